//! Search attributes on SQLite: their rows (written with each append),
//! the kinds fixed per name, and the listing and counting queries, which
//! read the `workflows` and `search_attributes` indexes only.

use std::collections::HashMap;

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::SUMMARY_COLUMNS;
use super::errors::backend;
use super::rows::summary_from_row;
use crate::event::{AttributeKind, SearchAttribute};
use crate::ids::WorkflowId;
use crate::status::WorkflowSummary;
use crate::store::{AttributeChanges, Result, StoreError};
use crate::time::Timestamp;
use crate::visibility::{
    AttributeCondition, AttributeOp, ListCursor, ListFilter, ListPage, SearchAttributes,
    WorkflowListing,
};

/// The kinds fixed for `names` (names never used are left out).
pub(super) async fn kinds_of(
    conn: &mut SqliteConnection,
    names: impl IntoIterator<Item = &str>,
) -> Result<HashMap<String, AttributeKind>> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT name, kind FROM search_attribute_types WHERE name IN (",
    );
    let mut any = false;
    {
        let mut list = query.separated(", ");
        for name in names {
            list.push_bind(name.to_owned());
            any = true;
        }
    }
    if !any {
        return Ok(HashMap::new());
    }
    query.push(")");
    let rows = query.build().fetch_all(&mut *conn).await.map_err(backend)?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name").map_err(backend)?;
            let kind: String = row.try_get("kind").map_err(backend)?;
            let kind = AttributeKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                location: format!("search_attribute_types row {name}"),
                reason: format!("unknown kind {kind:?}"),
            })?;
            Ok((name, kind))
        })
        .collect()
}

/// Checks the kinds of the values `changes` sets against the store's, before
/// the request writes anything.
pub(super) async fn check_kinds(
    conn: &mut SqliteConnection,
    changes: &AttributeChanges,
) -> Result<()> {
    let stored = kinds_of(conn, changes.set.keys().map(String::as_str)).await?;
    changes.check_kinds(&stored)
}

/// Writes `changes` (checked) for the workflow of `summary` (its row after
/// the append). The kinds of new names are recorded by a trigger.
pub(super) async fn write_attributes(
    conn: &mut SqliteConnection,
    summary: &WorkflowSummary,
    changes: &AttributeChanges,
) -> sqlx::Result<()> {
    let workflow_id = &summary.workflow_id;
    if changes.clear {
        sqlx::query("DELETE FROM search_attributes WHERE workflow_id = ?1")
            .bind(workflow_id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    if changes.set.is_empty() {
        return Ok(());
    }
    insert_attributes(conn, summary, &changes.set).await
}

async fn insert_attributes(
    conn: &mut SqliteConnection,
    summary: &WorkflowSummary,
    attributes: &SearchAttributes,
) -> sqlx::Result<()> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO search_attributes \
         (workflow_id, name, kind, value, workflow_type, status, started_at, closed_at) ",
    );
    insert.push_values(attributes, |mut row, (name, value)| {
        row.push_bind(summary.workflow_id.as_str().to_owned())
            .push_bind(name.clone())
            .push_bind(value.kind().as_str());
        push_value(&mut row, value);
        row.push_bind(summary.workflow_type.clone())
            .push_bind(summary.status.as_str())
            .push_bind(summary.started_at.as_micros())
            .push_bind(summary.closed_at.map(Timestamp::as_micros));
    });
    insert.push(
        " ON CONFLICT (workflow_id, name) DO UPDATE SET kind = excluded.kind, value = excluded.value, \
         workflow_type = excluded.workflow_type, status = excluded.status, \
         started_at = excluded.started_at, closed_at = excluded.closed_at",
    );
    insert.build().execute(&mut *conn).await?;
    Ok(())
}

/// Rewrites the stored attributes of `workflow_id` as `expected` (of the
/// workflow whose row is `summary`, `None` for no row) if they differ, or
/// always with `force` (the row was rewritten: the copies of its columns
/// may be stale too); returns whether it wrote.
pub(super) async fn repair_attributes(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    summary: Option<&WorkflowSummary>,
    expected: &SearchAttributes,
    force: bool,
) -> Result<bool> {
    let stored = load_attributes(conn, std::slice::from_ref(workflow_id))
        .await
        .ok()
        .and_then(|mut found| found.remove(workflow_id.as_str()))
        .unwrap_or_default();
    if stored == *expected && !force {
        return Ok(false);
    }
    sqlx::query("DELETE FROM search_attributes WHERE workflow_id = ?1")
        .bind(workflow_id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if let Some(summary) = summary
        && !expected.is_empty()
    {
        insert_attributes(conn, summary, expected)
            .await
            .map_err(backend)?;
    }
    Ok(stored != *expected)
}

/// Binds a value as it is stored: ints, booleans and times as INTEGER.
fn push_value(
    row: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    value: &SearchAttribute,
) {
    match value {
        SearchAttribute::Text(text) => row.push_bind(text.clone()),
        SearchAttribute::Int(n) => row.push_bind(*n),
        SearchAttribute::Float(x) => row.push_bind(*x),
        SearchAttribute::Bool(b) => row.push_bind(i64::from(*b)),
        SearchAttribute::Time(t) => row.push_bind(t.as_micros()),
    };
}

fn bind_value(query: &mut QueryBuilder<Sqlite>, value: &SearchAttribute) {
    match value {
        SearchAttribute::Text(text) => query.push_bind(text.clone()),
        SearchAttribute::Int(n) => query.push_bind(*n),
        SearchAttribute::Float(x) => query.push_bind(*x),
        SearchAttribute::Bool(b) => query.push_bind(i64::from(*b)),
        SearchAttribute::Time(t) => query.push_bind(t.as_micros()),
    };
}

fn attribute_from_row(row: &SqliteRow) -> Result<(String, String, SearchAttribute)> {
    let workflow_id: String = row.try_get("workflow_id").map_err(backend)?;
    let name: String = row.try_get("name").map_err(backend)?;
    let kind: String = row.try_get("kind").map_err(backend)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        location: format!("search_attributes row {workflow_id} {name}"),
        reason,
    };
    let value = match AttributeKind::parse(&kind) {
        Some(AttributeKind::Text) => {
            SearchAttribute::Text(row.try_get("value").map_err(|e| corrupt(e.to_string()))?)
        }
        Some(AttributeKind::Int) => {
            SearchAttribute::Int(row.try_get("value").map_err(|e| corrupt(e.to_string()))?)
        }
        Some(AttributeKind::Float) => {
            SearchAttribute::Float(row.try_get("value").map_err(|e| corrupt(e.to_string()))?)
        }
        Some(AttributeKind::Bool) => SearchAttribute::Bool(
            row.try_get::<i64, _>("value")
                .map_err(|e| corrupt(e.to_string()))?
                != 0,
        ),
        Some(AttributeKind::Time) => SearchAttribute::Time(Timestamp::from_micros(
            row.try_get("value").map_err(|e| corrupt(e.to_string()))?,
        )),
        None => return Err(corrupt(format!("unknown kind {kind:?}"))),
    };
    Ok((workflow_id, name, value))
}

/// The attributes of `workflow_ids`, by raw workflow id. A row that does
/// not decode is left out.
pub(super) async fn load_attributes(
    conn: &mut SqliteConnection,
    workflow_ids: &[WorkflowId],
) -> Result<HashMap<String, SearchAttributes>> {
    let mut found: HashMap<String, SearchAttributes> = HashMap::new();
    if workflow_ids.is_empty() {
        return Ok(found);
    }
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT workflow_id, name, kind, value FROM search_attributes WHERE workflow_id IN (",
    );
    {
        let mut ids = query.separated(", ");
        for workflow_id in workflow_ids {
            ids.push_bind(workflow_id.as_str().to_owned());
        }
    }
    query.push(")");
    let rows = query.build().fetch_all(&mut *conn).await.map_err(backend)?;
    for row in &rows {
        if let Ok((workflow_id, name, value)) = attribute_from_row(row) {
            found.entry(workflow_id).or_default().insert(name, value);
        }
    }
    Ok(found)
}

/// Appends ` AND ...` for the workflow columns of `filter` (type, status,
/// times), on the table aliased `on` (`w`, or an attribute row, which
/// repeats them).
fn push_row_filter(query: &mut QueryBuilder<Sqlite>, filter: &ListFilter, on: &str) {
    if let Some(workflow_type) = &filter.workflow_type {
        query
            .push(format!(" AND {on}.workflow_type = "))
            .push_bind(workflow_type.clone());
    }
    if !filter.statuses.is_empty() {
        query.push(format!(" AND {on}.status IN ("));
        let mut statuses = query.separated(", ");
        for status in &filter.statuses {
            statuses.push_bind(status.as_str());
        }
        query.push(")");
    }
    let bounds = [
        ("started_at >= ", filter.started_after),
        ("started_at < ", filter.started_before),
        ("closed_at >= ", filter.closed_after),
        ("closed_at < ", filter.closed_before),
    ];
    for (condition, bound) in bounds {
        if let Some(bound) = bound {
            query
                .push(format!(" AND {on}.{condition}"))
                .push_bind(bound.as_micros());
        }
    }
}

/// Appends ` AND a.name = ? AND a.kind = ? AND a.value <op> ?` for one
/// condition on the attribute row aliased `a`.
fn push_condition(query: &mut QueryBuilder<Sqlite>, condition: &AttributeCondition, a: &str) {
    query
        .push(format!(" AND {a}.name = "))
        .push_bind(condition.name.clone())
        .push(format!(" AND {a}.kind = "))
        .push_bind(condition.op.values()[0].kind().as_str());
    match &condition.op {
        AttributeOp::Between(low, high) => {
            query.push(format!(" AND {a}.value BETWEEN "));
            bind_value(query, low);
            query.push(" AND ");
            bind_value(query, high);
        }
        op => {
            query.push(format!(" AND {a}.value {} ", op.symbol()));
            bind_value(query, op.values()[0]);
        }
    }
}

/// Appends ` AND EXISTS (...)` for each of `conditions`: one probe of the
/// `(workflow_id, name)` key of the row aliased `on`'s workflow.
fn push_exists(query: &mut QueryBuilder<Sqlite>, conditions: &[AttributeCondition], on: &str) {
    for condition in conditions {
        query.push(format!(
            " AND EXISTS (SELECT 1 FROM search_attributes AS b WHERE b.workflow_id = {on}.workflow_id"
        ));
        push_condition(query, condition, "b");
        query.push(")");
    }
}

/// A page of workflows matching `filter`, newest first.
pub(super) async fn list(
    conn: &mut SqliteConnection,
    filter: &ListFilter,
    after: Option<&ListCursor>,
    limit: usize,
) -> Result<ListPage> {
    let limit = limit.max(1);
    let columns = SUMMARY_COLUMNS
        .split(", ")
        .map(|column| format!("w.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Driven by the `workflows` indexes in listing order: a page stops at
    // its limit.
    let mut query =
        QueryBuilder::<Sqlite>::new(format!("SELECT {columns} FROM workflows AS w WHERE 1 = 1"));
    push_row_filter(&mut query, filter, "w");
    push_exists(&mut query, &filter.search, "w");
    if let Some(after) = after {
        query
            .push(" AND (w.started_at, w.workflow_id) < (")
            .push_bind(after.started_at.as_micros())
            .push(", ")
            .push_bind(after.workflow_id.as_str().to_owned())
            .push(")");
    }
    // One more than asked: whether a next page exists.
    query
        .push(" ORDER BY w.started_at DESC, w.workflow_id DESC LIMIT ")
        .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let rows = query.build().fetch_all(&mut *conn).await.map_err(backend)?;
    let more = rows.len() > limit;
    let summaries: Vec<_> = rows
        .iter()
        .take(limit)
        .filter_map(|row| summary_from_row(row).ok())
        .collect();
    let ids: Vec<WorkflowId> = summaries.iter().map(|s| s.workflow_id.clone()).collect();
    let mut attributes = load_attributes(conn, &ids).await?;
    let rows: Vec<WorkflowListing> = summaries
        .into_iter()
        .map(|summary| WorkflowListing {
            search_attributes: attributes
                .remove(summary.workflow_id.as_str())
                .unwrap_or_default(),
            summary,
        })
        .collect();
    let next = if more {
        rows.last().map(WorkflowListing::cursor)
    } else {
        None
    };
    Ok(ListPage { rows, next })
}

/// How many workflows match `filter`. With conditions on attributes, the
/// first one's index range is counted, the workflow columns checked on the
/// same index entries (the attribute rows repeat them).
pub(super) async fn count(conn: &mut SqliteConnection, filter: &ListFilter) -> Result<u64> {
    let mut query = match filter.search.split_first() {
        None => {
            let mut query =
                QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM workflows AS w WHERE 1 = 1");
            push_row_filter(&mut query, filter, "w");
            query
        }
        Some((first, rest)) => {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT COUNT(*) FROM search_attributes AS a WHERE 1 = 1",
            );
            push_condition(&mut query, first, "a");
            push_row_filter(&mut query, filter, "a");
            push_exists(&mut query, rest, "a");
            query
        }
    };
    let count: i64 = query
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

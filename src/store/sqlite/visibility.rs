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
use crate::store::{AttributeChanges, Result, StoreError};
use crate::time::Timestamp;
use crate::visibility::{
    AttributeOp, ListCursor, ListFilter, ListPage, SearchAttributes, WorkflowListing,
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

/// Writes `changes` (checked) for `workflow_id`, and fixes the kinds of new
/// names.
pub(super) async fn write_attributes(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    changes: &AttributeChanges,
) -> sqlx::Result<()> {
    if changes.clear {
        sqlx::query("DELETE FROM search_attributes WHERE workflow_id = ?1")
            .bind(workflow_id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    if changes.set.is_empty() {
        return Ok(());
    }
    let mut types = QueryBuilder::<Sqlite>::new("INSERT INTO search_attribute_types (name, kind) ");
    types.push_values(&changes.set, |mut row, (name, value)| {
        row.push_bind(name.as_str())
            .push_bind(value.kind().as_str());
    });
    types.push(" ON CONFLICT (name) DO NOTHING");
    types.build().execute(&mut *conn).await?;
    insert_attributes(conn, workflow_id, &changes.set).await
}

async fn insert_attributes(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    attributes: &SearchAttributes,
) -> sqlx::Result<()> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO search_attributes (workflow_id, name, kind, value) ",
    );
    insert.push_values(attributes, |mut row, (name, value)| {
        row.push_bind(workflow_id.as_str())
            .push_bind(name.as_str())
            .push_bind(value.kind().as_str());
        push_value(&mut row, value);
    });
    insert.push(
        " ON CONFLICT (workflow_id, name) DO UPDATE SET kind = excluded.kind, value = excluded.value",
    );
    insert.build().execute(&mut *conn).await?;
    Ok(())
}

/// Replaces the stored attributes of `workflow_id` with `expected` if they
/// differ; returns whether it wrote.
pub(super) async fn repair_attributes(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    expected: &SearchAttributes,
) -> Result<bool> {
    let stored = load_attributes(conn, std::slice::from_ref(workflow_id))
        .await
        .ok()
        .and_then(|mut found| found.remove(workflow_id.as_str()))
        .unwrap_or_default();
    if stored == *expected {
        return Ok(false);
    }
    sqlx::query("DELETE FROM search_attributes WHERE workflow_id = ?1")
        .bind(workflow_id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if !expected.is_empty() {
        insert_attributes(conn, workflow_id, expected)
            .await
            .map_err(backend)?;
    }
    Ok(true)
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

/// Appends ` AND ...` for every condition of `filter`, on `workflows AS w`.
fn push_filter(query: &mut QueryBuilder<Sqlite>, filter: &ListFilter) {
    if let Some(workflow_type) = &filter.workflow_type {
        query
            .push(" AND w.workflow_type = ")
            .push_bind(workflow_type.clone());
    }
    if !filter.statuses.is_empty() {
        query.push(" AND w.status IN (");
        let mut statuses = query.separated(", ");
        for status in &filter.statuses {
            statuses.push_bind(status.as_str());
        }
        query.push(")");
    }
    let bounds = [
        ("w.started_at >= ", filter.started_after),
        ("w.started_at < ", filter.started_before),
        ("w.closed_at >= ", filter.closed_after),
        ("w.closed_at < ", filter.closed_before),
    ];
    for (condition, bound) in bounds {
        if let Some(bound) = bound {
            query
                .push(" AND ")
                .push(condition)
                .push_bind(bound.as_micros());
        }
    }
    for condition in &filter.search {
        // One probe of the (workflow_id, name) key per candidate row.
        query
            .push(
                " AND EXISTS (SELECT 1 FROM search_attributes AS a \
                 WHERE a.workflow_id = w.workflow_id AND a.name = ",
            )
            .push_bind(condition.name.clone())
            .push(" AND a.kind = ")
            .push_bind(condition.op.values()[0].kind().as_str());
        match &condition.op {
            AttributeOp::Between(low, high) => {
                query.push(" AND a.value BETWEEN ");
                bind_value(query, low);
                query.push(" AND ");
                bind_value(query, high);
            }
            op => {
                query.push(format!(" AND a.value {} ", op.symbol()));
                bind_value(query, op.values()[0]);
            }
        }
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
    let mut query =
        QueryBuilder::<Sqlite>::new(format!("SELECT {columns} FROM workflows AS w WHERE 1 = 1"));
    push_filter(&mut query, filter);
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

/// How many workflows match `filter`.
pub(super) async fn count(conn: &mut SqliteConnection, filter: &ListFilter) -> Result<u64> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM workflows AS w WHERE 1 = 1");
    push_filter(&mut query, filter);
    let count: i64 = query
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

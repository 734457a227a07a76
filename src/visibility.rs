//! Visibility beyond the status row: search attributes (their checks and
//! their projection from history) and the filters of
//! [`crate::store::VisibilityStore::list`] and
//! [`crate::store::VisibilityStore::count`].
//!
//! A workflow's search attributes belong to its latest run: the run's
//! `workflow_started` sets the first ones, each `search_attributes_updated`
//! replaces the values of the names it carries, and a new run (an id reused)
//! starts from its own `workflow_started` again. Each name has one kind per
//! store, fixed by its first use.

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

use crate::event::{AttributeKind, Event, RecordedEvent, SearchAttribute};
use crate::ids::WorkflowId;
use crate::status::{WorkflowStatus, WorkflowSummary};
use crate::time::Timestamp;

/// A workflow's search attributes, by name.
pub type SearchAttributes = BTreeMap<String, SearchAttribute>;

/// The longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 256;

/// Checks one attribute on its own: a name of 1 to
/// [`MAX_ATTRIBUTE_NAME_BYTES`] bytes, a finite float. (Whether its kind is
/// the one its name has in a store is the store's check.)
pub fn check_attribute(name: &str, value: &SearchAttribute) -> Result<(), String> {
    if name.is_empty() {
        return Err("a search attribute's name must not be empty".into());
    }
    if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(format!(
            "search attribute name {name:?} is longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes"
        ));
    }
    if let SearchAttribute::Float(x) = value
        && !x.is_finite()
    {
        return Err(format!(
            "search attribute {name:?} is {x}; only finite floats are stored"
        ));
    }
    Ok(())
}

/// The attributes an event sets, and whether it first clears the earlier
/// ones (it opens a run).
pub fn attributes_set_by(event: &Event) -> Option<(bool, &SearchAttributes)> {
    match event {
        Event::WorkflowStarted {
            search_attributes, ..
        } => Some((true, search_attributes)),
        Event::SearchAttributesUpdated { attributes, .. } => Some((false, attributes)),
        _ => None,
    }
}

/// The search attributes of the latest run of `history` (or of any suffix
/// of it that starts with that run's `workflow_started`).
pub fn project_attributes(history: &[RecordedEvent]) -> SearchAttributes {
    let mut attributes = SearchAttributes::new();
    for recorded in history {
        if let Some((reset, set)) = attributes_set_by(&recorded.event) {
            if reset {
                attributes.clear();
            }
            attributes.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    attributes
}

/// How a comparison in a [`ListFilter`] matches an attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeOp {
    /// Equal to the value.
    Eq(SearchAttribute),
    /// Greater than the value.
    Gt(SearchAttribute),
    /// Greater than or equal to the value.
    Ge(SearchAttribute),
    /// Less than the value.
    Lt(SearchAttribute),
    /// Less than or equal to the value.
    Le(SearchAttribute),
    /// From the first value to the second, both included.
    Between(SearchAttribute, SearchAttribute),
}

impl AttributeOp {
    /// The values compared with.
    pub fn values(&self) -> Vec<&SearchAttribute> {
        match self {
            AttributeOp::Eq(v)
            | AttributeOp::Gt(v)
            | AttributeOp::Ge(v)
            | AttributeOp::Lt(v)
            | AttributeOp::Le(v) => vec![v],
            AttributeOp::Between(low, high) => vec![low, high],
        }
    }

    fn values_mut(&mut self) -> Vec<&mut SearchAttribute> {
        match self {
            AttributeOp::Eq(v)
            | AttributeOp::Gt(v)
            | AttributeOp::Ge(v)
            | AttributeOp::Lt(v)
            | AttributeOp::Le(v) => vec![v],
            AttributeOp::Between(low, high) => vec![low, high],
        }
    }

    /// The operator's name, for messages and SQL.
    pub fn symbol(&self) -> &'static str {
        match self {
            AttributeOp::Eq(_) => "=",
            AttributeOp::Gt(_) => ">",
            AttributeOp::Ge(_) => ">=",
            AttributeOp::Lt(_) => "<",
            AttributeOp::Le(_) => "<=",
            AttributeOp::Between(_, _) => "between",
        }
    }

    /// Whether `value` passes. Values of different kinds never match (a
    /// resolved filter has the kinds of the attributes it names).
    pub fn matches(&self, value: &SearchAttribute) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let cmp = |other: &SearchAttribute| compare(value, other);
        match self {
            AttributeOp::Eq(v) => cmp(v) == Some(Equal),
            AttributeOp::Gt(v) => cmp(v) == Some(Greater),
            AttributeOp::Ge(v) => matches!(cmp(v), Some(Greater | Equal)),
            AttributeOp::Lt(v) => cmp(v) == Some(Less),
            AttributeOp::Le(v) => matches!(cmp(v), Some(Less | Equal)),
            AttributeOp::Between(low, high) => {
                matches!(cmp(low), Some(Greater | Equal)) && matches!(cmp(high), Some(Less | Equal))
            }
        }
    }
}

/// Orders two values of the same kind (text bytewise, as SQLite's BINARY
/// collation does); `None` for different kinds.
fn compare(a: &SearchAttribute, b: &SearchAttribute) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (SearchAttribute::Text(a), SearchAttribute::Text(b)) => {
            Some(a.as_bytes().cmp(b.as_bytes()))
        }
        (SearchAttribute::Int(a), SearchAttribute::Int(b)) => Some(a.cmp(b)),
        (SearchAttribute::Float(a), SearchAttribute::Float(b)) => a.partial_cmp(b),
        (SearchAttribute::Bool(a), SearchAttribute::Bool(b)) => Some(a.cmp(b)),
        (SearchAttribute::Time(a), SearchAttribute::Time(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// One condition on a search attribute: the workflow has attribute `name`
/// and its value passes `op`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeCondition {
    /// The attribute.
    pub name: String,
    /// The comparison.
    pub op: AttributeOp,
}

/// Which workflows [`crate::store::VisibilityStore::list`] and
/// [`crate::store::VisibilityStore::count`] return: every field that is
/// set must hold (empty fields match all). Windows are half-open: `after`
/// includes its instant, `before` excludes it; a `closed_*` bound leaves
/// out workflows still running.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListFilter {
    /// Only this workflow type.
    pub workflow_type: Option<String>,
    /// Only these statuses (any of them); empty for all.
    pub statuses: Vec<WorkflowStatus>,
    /// Latest run started at or after this instant.
    pub started_after: Option<Timestamp>,
    /// Latest run started before this instant.
    pub started_before: Option<Timestamp>,
    /// Latest run ended at or after this instant.
    pub closed_after: Option<Timestamp>,
    /// Latest run ended before this instant.
    pub closed_before: Option<Timestamp>,
    /// Conditions on search attributes (all must hold).
    pub search: Vec<AttributeCondition>,
}

/// A filter that cannot be used as it is.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid filter: {0}")]
pub struct FilterError(pub String);

impl ListFilter {
    /// The attribute names the filter compares.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.search.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Checks the filter against the kinds the store has fixed for its
    /// attribute names (`kinds`), and converts integers compared with a
    /// float attribute to floats. Ranges compare numbers and times only; a
    /// value of another kind than its attribute's is an error. A name the
    /// store does not know yet is no error: no workflow has it, so the
    /// condition matches nothing.
    pub fn resolve(mut self, kinds: &HashMap<String, AttributeKind>) -> Result<Self, FilterError> {
        for condition in &mut self.search {
            let name = condition.name.clone();
            if name.is_empty() {
                return Err(FilterError(
                    "a search attribute's name must not be empty".into(),
                ));
            }
            let kind = kinds.get(&name).copied();
            let ranged = !matches!(condition.op, AttributeOp::Eq(_));
            let symbol = condition.op.symbol();
            for value in condition.op.values_mut() {
                if let (Some(AttributeKind::Float), SearchAttribute::Int(n)) = (kind, &*value) {
                    *value = SearchAttribute::Float(*n as f64);
                }
                if let SearchAttribute::Float(x) = value
                    && !x.is_finite()
                {
                    return Err(FilterError(format!("{name:?} is compared with {x}")));
                }
                let found = value.kind();
                if ranged && matches!(found, AttributeKind::Text | AttributeKind::Bool) {
                    return Err(FilterError(format!(
                        "{name:?} {symbol} compares a {found}: ranges compare numbers and times only"
                    )));
                }
                if let Some(kind) = kind
                    && kind != found
                {
                    return Err(FilterError(format!(
                        "search attribute {name:?} holds {kind} values, and the filter compares it with a {found}"
                    )));
                }
            }
            if let AttributeOp::Between(low, high) = &condition.op
                && low.kind() != high.kind()
            {
                return Err(FilterError(format!(
                    "{name:?} between compares a {} with a {}",
                    low.kind(),
                    high.kind()
                )));
            }
        }
        Ok(self)
    }

    /// Whether a workflow (its row and its attributes) passes the filter.
    pub fn matches(&self, summary: &WorkflowSummary, attributes: &SearchAttributes) -> bool {
        let closed = |bound: Option<Timestamp>, pass: fn(Timestamp, Timestamp) -> bool| {
            bound.is_none_or(|bound| summary.closed_at.is_some_and(|at| pass(at, bound)))
        };
        self.workflow_type
            .as_ref()
            .is_none_or(|t| *t == summary.workflow_type)
            && (self.statuses.is_empty() || self.statuses.contains(&summary.status))
            && self.started_after.is_none_or(|t| summary.started_at >= t)
            && self.started_before.is_none_or(|t| summary.started_at < t)
            && closed(self.closed_after, |at, t| at >= t)
            && closed(self.closed_before, |at, t| at < t)
            && self.search.iter().all(|condition| {
                attributes
                    .get(&condition.name)
                    .is_some_and(|value| condition.op.matches(value))
            })
    }
}

/// Where a listing stands: the last row returned, in the listing's order
/// (latest run's start, newest first, then workflow id, descending).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor {
    /// The row's start.
    pub started_at: Timestamp,
    /// The row's workflow.
    pub workflow_id: WorkflowId,
}

/// One workflow in a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowListing {
    /// Its visibility row.
    pub summary: WorkflowSummary,
    /// Its search attributes.
    pub search_attributes: SearchAttributes,
}

impl WorkflowListing {
    /// This row's position in listing order.
    pub fn cursor(&self) -> ListCursor {
        ListCursor {
            started_at: self.summary.started_at,
            workflow_id: self.summary.workflow_id.clone(),
        }
    }
}

/// One page of [`crate::store::VisibilityStore::list`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListPage {
    /// The workflows, newest start first (ties: workflow id, descending).
    pub rows: Vec<WorkflowListing>,
    /// Where the next page starts (pass it as `after`); `None` at the end.
    pub next: Option<ListCursor>,
}

/// The largest page a listing returns.
pub const MAX_LIST_LIMIT: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;
    use crate::ids::RunId;
    use crate::payload::Payload;

    fn text(s: &str) -> SearchAttribute {
        SearchAttribute::Text(s.into())
    }

    fn at(seq: u64, event: Event) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope {
                workflow_id: WorkflowId::new("wf").unwrap(),
                seq,
                recorded_at: Timestamp::from_millis(seq as i64),
            },
            event,
        }
    }

    fn started(attributes: SearchAttributes) -> Event {
        Event::WorkflowStarted {
            run_id: RunId::generate(),
            parent_run_id: None,
            workflow_type: "T".into(),
            input: Payload::etf(vec![]),
            package_version: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            search_attributes: attributes,
            parent: None,
        }
    }

    #[test]
    fn upserts_replace_names_and_a_new_run_starts_over() {
        let first = SearchAttributes::from([("a".into(), text("1")), ("b".into(), text("2"))]);
        let history = vec![
            at(1, started(first)),
            at(
                2,
                Event::SearchAttributesUpdated {
                    command: Some(0),
                    attributes: SearchAttributes::from([("b".into(), SearchAttribute::Int(3))]),
                },
            ),
        ];
        assert_eq!(
            project_attributes(&history),
            SearchAttributes::from([
                ("a".into(), text("1")),
                ("b".into(), SearchAttribute::Int(3))
            ])
        );
        let mut reused = history.clone();
        reused.push(at(
            3,
            Event::WorkflowCompleted {
                result: Payload::etf(vec![]),
            },
        ));
        reused.push(at(
            4,
            started(SearchAttributes::from([("c".into(), text("x"))])),
        ));
        assert_eq!(
            project_attributes(&reused),
            SearchAttributes::from([("c".into(), text("x"))])
        );
    }

    #[test]
    fn resolving_checks_kinds_and_widens_integers_for_floats() {
        let kinds = HashMap::from([
            ("amount".to_owned(), AttributeKind::Float),
            ("region".to_owned(), AttributeKind::Text),
        ]);
        let filter = |name: &str, op| ListFilter {
            search: vec![AttributeCondition {
                name: name.into(),
                op,
            }],
            ..ListFilter::default()
        };
        let resolved = filter("amount", AttributeOp::Ge(SearchAttribute::Int(100)))
            .resolve(&kinds)
            .unwrap();
        assert_eq!(
            resolved.search[0].op,
            AttributeOp::Ge(SearchAttribute::Float(100.0))
        );
        assert!(
            filter("region", AttributeOp::Eq(SearchAttribute::Int(1)))
                .resolve(&kinds)
                .unwrap_err()
                .0
                .contains("holds text values")
        );
        assert!(
            filter("region", AttributeOp::Gt(text("a")))
                .resolve(&kinds)
                .is_err()
        );
        assert!(
            filter(
                "n",
                AttributeOp::Between(SearchAttribute::Int(1), SearchAttribute::Float(2.0))
            )
            .resolve(&kinds)
            .is_err()
        );
        // Unknown names are no error: nothing has them.
        assert!(
            filter("unknown", AttributeOp::Eq(text("x")))
                .resolve(&kinds)
                .is_ok()
        );
    }

    #[test]
    fn comparisons_are_per_kind_and_between_is_inclusive() {
        let between = AttributeOp::Between(SearchAttribute::Int(1), SearchAttribute::Int(3));
        assert!(between.matches(&SearchAttribute::Int(1)));
        assert!(between.matches(&SearchAttribute::Int(3)));
        assert!(!between.matches(&SearchAttribute::Int(4)));
        assert!(!between.matches(&SearchAttribute::Float(2.0)));
        assert!(AttributeOp::Lt(text("b")).matches(&text("a")));
        assert!(AttributeOp::Eq(SearchAttribute::Bool(true)).matches(&SearchAttribute::Bool(true)));
        assert!(
            AttributeOp::Gt(SearchAttribute::Time(Timestamp::from_micros(5)))
                .matches(&SearchAttribute::Time(Timestamp::from_micros(6)))
        );
    }

    #[test]
    fn attribute_checks() {
        assert!(check_attribute("", &text("x")).is_err());
        assert!(check_attribute(&"n".repeat(257), &text("x")).is_err());
        assert!(check_attribute("x", &SearchAttribute::Float(f64::NAN)).is_err());
        assert!(check_attribute("x", &SearchAttribute::Float(1.5)).is_ok());
    }
}

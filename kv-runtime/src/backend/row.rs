//! What backends store: untyped rows whose value is JSON text.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A stored value: its JSON text, and the typed value it was encoded from
/// when this process wrote it, so that reads of a row held in memory (the
/// memory backend, the in-process change feed) need not decode it again.
/// Cheap to clone.
#[derive(Clone)]
pub struct Payload(Arc<PayloadInner>);

struct PayloadInner {
    json: Box<str>,
    /// The version of the table's schema that wrote it (1 for rows written
    /// before versions were recorded).
    schema: u32,
    typed: Option<Arc<dyn Any + Send + Sync>>,
}

impl Payload {
    /// Wraps JSON text, as read from storage. The text must be valid JSON
    /// produced by serializing a table's value (backends return what they
    /// were given).
    /// The schema version is 1.
    pub fn from_json(json: impl Into<Box<str>>) -> Self {
        Payload::versioned(json, 1)
    }

    /// Wraps JSON text written by version `schema` of the table's schema,
    /// as read from storage (backends store [`Payload::schema`] beside the
    /// JSON and give it back here).
    pub fn versioned(json: impl Into<Box<str>>, schema: u32) -> Self {
        Payload(Arc::new(PayloadInner {
            json: json.into(),
            schema,
            typed: None,
        }))
    }

    /// JSON text together with the value it encodes, of version `schema`.
    pub(crate) fn encoded<T: Any + Send + Sync>(json: String, schema: u32, typed: Arc<T>) -> Self {
        Payload(Arc::new(PayloadInner {
            json: json.into_boxed_str(),
            schema,
            typed: Some(typed),
        }))
    }

    /// The version of the table's schema that wrote the value.
    pub fn schema(&self) -> u32 {
        self.0.schema
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0.json
    }

    /// The value this payload was encoded from, when it is of type `T`.
    pub(crate) fn typed<T: 'static>(&self) -> Option<&T> {
        self.0.typed.as_deref().and_then(|t| t.downcast_ref::<T>())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Payload")
            .field(&self.json())
            .field(&self.schema())
            .finish()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() && self.schema() == other.schema()
    }
}

/// An untyped stored row, as backends keep it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    /// Key text.
    pub key: String,
    /// The value.
    pub value: Payload,
    /// First insert, ms since the epoch.
    pub created_at: i64,
    /// Last mutation, ms since the epoch; the row's version.
    pub updated_at: i64,
    /// Set while soft-deleted.
    pub deleted_at: Option<i64>,
    /// Who wrote last (shared text: cheap to copy into every read).
    pub updated_by: Option<Arc<str>>,
}

impl RawRow {
    /// Whether the row is live (not soft-deleted).
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// Shares the author text of the rows read in one batch: a page is mostly
/// written by one or a few users, and each run of rows with the same
/// author then holds one `Arc<str>` instead of allocating (and later
/// freeing) a copy per row.
#[derive(Default)]
pub(crate) struct Authors {
    last: Option<Arc<str>>,
}

impl Authors {
    /// The shared text of `author` (`None` stays `None`).
    pub(crate) fn share(&mut self, author: Option<&str>) -> Option<Arc<str>> {
        let author = author?;
        match &self.last {
            Some(last) if **last == *author => Some(Arc::clone(last)),
            _ => {
                let shared: Arc<str> = Arc::from(author);
                self.last = Some(Arc::clone(&shared));
                Some(shared)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_share_equal_text_and_keep_different_text_apart() {
        let mut authors = Authors::default();
        let a = authors.share(Some("ada")).unwrap();
        let b = authors.share(Some("ada")).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "a run of one author shares its text");
        let c = authors.share(Some("bob")).unwrap();
        assert_eq!(&*c, "bob");
        assert_eq!(authors.share(None), None);
        let d = authors.share(Some("ada")).unwrap();
        assert_eq!(&*d, "ada");
        assert_eq!(&*a, "ada", "earlier rows keep their own author");
    }

    #[test]
    fn payload_keeps_the_value_it_was_encoded_from() {
        let p = Payload::encoded("[1,2,3]".to_owned(), 1, Arc::new(vec![1u32, 2, 3]));
        assert_eq!(p.typed::<Vec<u32>>(), Some(&vec![1, 2, 3]));
        assert_eq!(p.typed::<Vec<u64>>(), None);
        assert_eq!(Payload::from_json("[1]").typed::<Vec<u32>>(), None);
        assert_eq!(p, Payload::from_json("[1,2,3]"));
    }
}

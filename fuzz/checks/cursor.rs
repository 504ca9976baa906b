//! Cursor decoding, through `list`: any text as a cursor gives a page or
//! `INVALID_CURSOR`; a cursor `list` made continues after its page's last
//! key, whatever the key.

use kv_runtime::{Ctx, ErrorCode, Kv, PageRequest, Store};
use serde::{Deserialize, Serialize};

/// Free keys.
#[derive(Kv, Serialize, Deserialize, Clone, Debug)]
#[kv(table = "fuzzCursor")]
pub struct FuzzCursor {
    pub n: u32,
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    super::runtime().block_on(async {
        let table = Store::memory().table::<FuzzCursor>();
        let ctx = Ctx::internal();
        // The input as a cursor.
        match table.list(&ctx, PageRequest::after(text.clone(), 2)).await {
            Ok(page) => assert!(page.page.is_empty() && page.is_done),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidCursor, "cursor {text:?}: {e}"),
        }
        // The input as a key: a cursor after it continues after it.
        let key = text;
        if table.set(&ctx, &key, FuzzCursor { n: 1 }).await.is_err() {
            return; // not a key
        }
        let mut after = key.clone();
        after.push('\u{10FFFF}');
        let later = ["\u{10FFFF}\u{10FFFF}", after.as_str()]
            .into_iter()
            .find(|k| k.len() <= 256 && *k > key.as_str());
        if let Some(later) = later {
            let later = later.to_owned();
            table
                .set(&ctx, &later, FuzzCursor { n: 2 })
                .await
                .expect("a key");
            let first = table
                .list(&ctx, PageRequest::first(1))
                .await
                .expect("a page");
            let cursor = first.continue_cursor.expect("a second page");
            let next = table
                .list(&ctx, PageRequest::after(cursor, 1))
                .await
                .expect("a page");
            let keys: Vec<&str> = first
                .page
                .iter()
                .chain(&next.page)
                .map(|r| r.key.as_str())
                .collect();
            assert_eq!(keys, [key.as_str(), later.as_str()]);
            assert!(next.is_done);
        }
    });
}

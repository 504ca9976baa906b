//! The backend conformance suite (feature `testing`).
//!
//! Every backend must pass it unchanged. It is written against [`Store`]
//! and the [`Backend`](crate::backend::Backend) trait only, so a backend of
//! your own runs it the same way the shipped ones do:
//!
//! ```ignore
//! // tests/conformance_mine.rs
//! kv_runtime::conformance_suite!(async { kv_runtime::Store::with_backend(MyBackend::connect().await) });
//! ```
//!
//! The expression is evaluated once per case and must give a store over an
//! empty backend (or at least one without the suite's tables, whose names
//! all start with `conformance`), or a store together with something to keep
//! alive until the case ends, such as a temporary directory ([`Fixture`]).
//! Each case becomes its own `#[test]`.

#[doc(hidden)]
pub mod cases;
#[doc(hidden)]
pub mod schemas;

use std::future::Future;

use crate::Store;

/// What a conformance factory gives: a [`Store`], or a store and a guard
/// that must outlive it (dropped after the store, e.g. the temporary
/// directory holding its database file).
pub trait Fixture {
    /// The store the case runs on.
    fn store(&self) -> Store;
}

impl Fixture for Store {
    fn store(&self) -> Store {
        self.clone()
    }
}

impl<G> Fixture for (Store, G) {
    fn store(&self) -> Store {
        self.0.clone()
    }
}

/// Runs one async case to completion on a fresh multi-thread Tokio runtime.
pub fn run<F: Future<Output = ()>>(case: F) {
    // Two workers, so that concurrent cases really run in parallel and a
    // backend without atomic writes fails them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built for the test");
    runtime.block_on(case);
}

/// Expands to one `#[test]` per conformance case, each given a fresh store
/// from `$factory` (an expression of type `impl Future<Output = F>` where
/// `F` is a [`Fixture`]: a `Store`, or a `(Store, guard)`).
///
/// The cases come from the one list in `testing/cases/mod.rs`; each test is
/// named after its case.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::__conformance_cases!(conformance_suite! { @cases $factory; });
    };
    (@cases $factory:expr; $($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $($(
            #[test]
            fn $case() {
                $crate::testing::run(async {
                    let fixture = $factory.await;
                    let store = $crate::testing::Fixture::store(&fixture);
                    $crate::testing::cases::$module::$case(store).await;
                    drop(fixture);
                });
            }
        )*)*
    };
}

//! Who is calling: the context every write and `list` takes.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// The caller of an operation: a user id (or none), that user's roles,
/// whether the call comes from the server itself, the client address, and
/// any application data a write-role predicate needs.
///
/// `Ctx` is cheap to clone. The web layer builds it from a request through
/// a function the application supplies; it never builds an internal context
/// from a request.
///
/// ```
/// use kv_runtime::Ctx;
///
/// let admin = Ctx::user("u_42").with_role("admin");
/// assert!(admin.has_role("admin"));
/// assert!(!admin.is_internal());
///
/// let cron = Ctx::internal();
/// assert!(cron.is_internal());
/// ```
#[derive(Clone, Default)]
pub struct Ctx {
    user_id: Option<Arc<str>>,
    roles: Vec<Arc<str>>,
    internal: bool,
    actor: Option<Arc<str>>,
    client_addr: Option<Arc<str>>,
    data: Option<Arc<dyn Any + Send + Sync>>,
}

impl Ctx {
    /// A caller with no user: a signed-out visitor.
    pub fn anonymous() -> Self {
        Ctx::default()
    }

    /// A signed-in user, with no roles yet (add them with [`Ctx::with_role`]).
    pub fn user(id: impl Into<String>) -> Self {
        Ctx {
            user_id: Some(Arc::from(id.into())),
            ..Ctx::default()
        }
    }

    /// The server itself (cron jobs, migrations): passes every write role
    /// and is exempt from rate limits. Never build one from a request.
    pub fn internal() -> Self {
        Ctx {
            internal: true,
            ..Ctx::default()
        }
    }

    /// Names an internal caller in `updated_by` (instead of `"internal"`),
    /// e.g. `Ctx::internal().with_actor("cli:alice")` for a write made from
    /// the command line, or `"cron:purge"` for a job. It only names: it
    /// grants nothing, and a user's id is recorded as before (the name is
    /// ignored for a context with a user id or that is not internal).
    ///
    /// ```
    /// let ctx = kv_runtime::Ctx::internal().with_actor("cli:alice");
    /// assert_eq!(ctx.actor_name(), Some("cli:alice"));
    /// assert_eq!(kv_runtime::Ctx::internal().actor_name(), Some("internal"));
    /// ```
    pub fn with_actor(mut self, name: impl Into<String>) -> Self {
        self.actor = Some(Arc::from(name.into()));
        self
    }

    /// Adds a role.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(Arc::from(role.into()));
        self
    }

    /// Adds several roles.
    pub fn with_roles<I, R>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.roles
            .extend(roles.into_iter().map(|r| Arc::from(r.into())));
        self
    }

    /// Records the client's network address, used as the rate-limit bucket
    /// for callers without a user id.
    pub fn with_client_addr(mut self, addr: impl Into<String>) -> Self {
        self.client_addr = Some(Arc::from(addr.into()));
        self
    }

    /// Attaches application data (permissions as the app loaded them, a
    /// handle to the app's services) for write-role predicates and hooks to
    /// read back with [`Ctx::data`].
    pub fn with_data<T: Any + Send + Sync>(mut self, data: T) -> Self {
        self.data = Some(Arc::new(data));
        self
    }

    /// The user id, if a user is signed in.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| &**r == role)
    }

    /// The caller's roles.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| &**r)
    }

    /// Whether the call comes from the server itself.
    pub fn is_internal(&self) -> bool {
        self.internal
    }

    /// The client address, if the context carries one.
    pub fn client_addr(&self) -> Option<&str> {
        self.client_addr.as_deref()
    }

    /// The application data of type `T`, if the context carries it.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.data.as_deref().and_then(|d| d.downcast_ref::<T>())
    }

    /// The name written to `updated_by`: the user id; for an internal
    /// caller without one, its [`Ctx::with_actor`] name or `"internal"`;
    /// none for an anonymous caller.
    pub fn actor_name(&self) -> Option<&str> {
        match (&self.user_id, self.internal) {
            (Some(id), _) => Some(id),
            (None, true) => Some(self.actor.as_deref().unwrap_or("internal")),
            (None, false) => None,
        }
    }

    pub(crate) fn actor(&self) -> Option<&str> {
        self.actor_name()
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("user_id", &self.user_id)
            .field("roles", &self.roles)
            .field("internal", &self.internal)
            .field("actor", &self.actor)
            .field("client_addr", &self.client_addr)
            .field("has_data", &self.data.is_some())
            .finish()
    }
}

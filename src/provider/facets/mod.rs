//! Facets: the capabilities a resource kind opts into beyond its core (read, create, update,
//! delete and what they need), after terraform-plugin-framework's optional interfaces. Each is
//! a small trait; the erased kind answers `fn facet(&self) -> Option<&dyn Facet>`, `None` by
//! default, and the engine asks the registry which kinds have it. A new capability is a new
//! facet with a default, never one more method every kind must forward.

pub mod access;
pub mod annotate;
pub mod artifact;
pub mod inventory;
pub mod operations;

pub use access::Access;
pub use annotate::{Annotate, Annotation, ChangeView, Stage};
pub use artifact::Artifact;
pub use inventory::{Inventory, Parent};
pub use operations::{Decision, Operation, OperationArgs, Operations};

//! The `Artifact` facet: a kind whose attributes derive from something built on this machine
//! (a Lambda's zip, from its crate). Building takes the command's [`Builds`] (its profile,
//! where progress goes, what it built already): nothing about it is process-global.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::build::{Builds, PrepareError};
use crate::value::Attrs;

#[async_trait]
pub trait Artifact: Send + Sync {
    /// The attributes that decide what [`Artifact::prepare`] builds (a Lambda's `source`):
    /// `build` needs them known before apply, and names the first one that is not.
    fn inputs(&self) -> &'static [&'static str];

    /// The attributes that name a file or folder on this machine (a Lambda's `source` and
    /// `zip_file`): relative to the spec's folder, resolved with [`Builds::resolve`], and
    /// checked to exist when the spec is loaded.
    fn paths(&self) -> &'static [&'static str];

    /// The attributes that a change of the built code alone changes: a watch round deploys a
    /// plan that changes these and nothing else.
    fn code_attributes(&self) -> &'static [&'static str];

    /// The directories a resource with these attributes is built from, as written (relative to
    /// the spec's folder): what watch mode watches.
    fn sources(&self, attrs: &Attrs) -> Vec<PathBuf>;

    /// Fills in the attributes derived from the local artifact (a zip's hash) before the
    /// values are diffed; called when planning and again when applying.
    async fn prepare(&self, builds: &Builds, desired: &mut Attrs) -> Result<(), PrepareError>;
}

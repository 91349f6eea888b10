//! The tags certvault writes on what it puts in AWS: a value type with no dependencies, so
//! that the AWS boundary and the errors that name a tag both read it from here.

/// The tag that marks a certificate certvault imported, with the entry id as value: a
/// crash between ImportCertificate and recording the ARN is adopted, not duplicated.
pub const ENTRY_TAG: &str = "certvault:entry-id";

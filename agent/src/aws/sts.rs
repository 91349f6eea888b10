//! STS: who the credentials of a session belong to.

use super::classify;
use crate::error::{ApiError, Refusal};

/// Who the credentials of a session belong to, asked again just before secrets are sent.
pub trait StsApi: Send + Sync {
    /// STS GetCallerIdentity: the account id.
    fn account(&self) -> impl Future<Output = Result<String, ApiError>> + Send;
}

/// STS, through aws-sdk-sts.
#[derive(Debug, Clone)]
pub struct SdkSts {
    pub(super) client: aws_sdk_sts::Client,
}

impl StsApi for SdkSts {
    async fn account(&self) -> Result<String, ApiError> {
        let who = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("GetCallerIdentity", "global", e))?;
        match who.account().filter(|a| !a.is_empty()) {
            Some(a) => Ok(a.to_owned()),
            None => Err(ApiError::refused(
                "GetCallerIdentity",
                "global",
                Refusal::NoAccount,
            )),
        }
    }
}

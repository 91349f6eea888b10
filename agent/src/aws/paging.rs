//! Listings that come in pages: every page read through a [`Scope`] (counted, retried,
//! stoppable), and a bound on how many pages a listing may have before the server's tokens
//! are no longer trusted.

use vault::records::AcmSummary;

use super::retry::{Idempotence, Scope};
use crate::error::{ApiError, Refusal};

/// A page of something, and where the next starts.
pub type Page<T> = (Vec<T>, Option<String>);

/// One page of ListCertificates.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The certificates on this page.
    pub summaries: Vec<AcmSummary>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

/// The most pages one listing may have before we stop trusting the server's tokens.
pub const MAX_LIST_PAGES: usize = 10_000;

/// Pages read at most of any one listing.
const MAX_PAGES: usize = 200;

/// Every page of a listing (at most [`MAX_PAGES`]), through `scope`.
pub(crate) async fn all_pages<T, F, Fut>(
    scope: &Scope,
    op: &'static str,
    mut page: F,
) -> Result<Vec<T>, ApiError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, ApiError>>,
{
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let m = marker.clone();
        let (items, next) = scope
            .call(None, op, Idempotence::Safe, || page(m.clone()))
            .await?;
        out.extend(items);
        match next {
            Some(n) if !n.is_empty() => marker = Some(n),
            _ => return Ok(out),
        }
    }
    Err(ApiError::refused(
        op,
        &scope.region,
        Refusal::TooManyPages { pages: MAX_PAGES },
    ))
}

//! The one pagination loop every list endpoint goes through.
//!
//! `marker` is a numeric offset and `next_marker` the offset of the next
//! page. The loop stops on every condition the reference lists (section 8,
//! gotcha 3): an empty page; a missing, zero or non-increasing
//! `next_marker`; once as many records were fetched as `count` says exist;
//! and after a hard page cap, so a server that keeps answering can never
//! keep the exporter looping.

use std::future::Future;

/// One page as returned by a list endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<u64>,
    pub count: Option<u64>,
}

/// Everything a pagination run fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pages (requests) it took.
    pub pages: usize,
    /// True when the page cap stopped the loop before the server said done.
    pub truncated: bool,
}

/// Decides, after a page, where the next one starts, or `None` to stop.
pub fn next_marker(
    current: u64,
    page_len: usize,
    fetched: usize,
    next: Option<u64>,
    count: Option<u64>,
) -> Option<u64> {
    if page_len == 0 {
        return None;
    }
    if count.is_some_and(|c| fetched as u64 >= c) {
        return None;
    }
    match next {
        Some(n) if n > current => Some(n),
        _ => None,
    }
}

/// Fetches pages from `start` until a stop condition holds or `max_pages`
/// were read. The first error aborts the run and is returned as is.
pub async fn paginate<T, E, F, Fut>(
    start: u64,
    max_pages: usize,
    mut fetch: F,
) -> Result<Paged<T>, E>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Page<T>, E>>,
{
    let mut marker = start;
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = fetch(marker).await?;
        pages += 1;
        let page_len = page.items.len();
        items.extend(page.items);
        let Some(next) = next_marker(marker, page_len, items.len(), page.next_marker, page.count)
        else {
            return Ok(Paged {
                items,
                pages,
                truncated: false,
            });
        };
        if pages >= max_pages {
            return Ok(Paged {
                items,
                pages,
                truncated: true,
            });
        }
        marker = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stop_condition_stops() {
        // empty page
        assert_eq!(next_marker(0, 0, 0, Some(100), Some(500)), None);
        // missing, zero or non-increasing next_marker
        assert_eq!(next_marker(0, 100, 100, None, Some(500)), None);
        assert_eq!(next_marker(100, 100, 200, Some(0), Some(500)), None);
        assert_eq!(next_marker(100, 100, 200, Some(100), Some(500)), None);
        assert_eq!(next_marker(100, 100, 200, Some(50), Some(500)), None);
        // fetched >= count
        assert_eq!(next_marker(400, 100, 500, Some(500), Some(500)), None);
        assert_eq!(next_marker(400, 100, 600, Some(500), Some(500)), None);
        // otherwise go on, with or without a count
        assert_eq!(next_marker(0, 100, 100, Some(100), Some(500)), Some(100));
        assert_eq!(next_marker(0, 100, 100, Some(100), None), Some(100));
    }

    fn pages(
        total: u64,
        size: u64,
    ) -> impl FnMut(u64) -> std::future::Ready<Result<Page<u64>, ()>> {
        move |marker| {
            let end = (marker + size).min(total);
            std::future::ready(Ok(Page {
                items: (marker..end).collect(),
                next_marker: Some(end),
                count: Some(total),
            }))
        }
    }

    #[tokio::test]
    async fn reads_all_pages_until_count() {
        let got = paginate(0, 100, pages(1234, 500)).await.unwrap();
        assert_eq!(got.items.len(), 1234);
        assert_eq!(got.items, (0..1234).collect::<Vec<_>>());
        assert_eq!(got.pages, 3);
        assert!(!got.truncated);
    }

    #[tokio::test]
    async fn the_page_cap_bounds_a_server_that_never_says_done() {
        let endless = |marker: u64| {
            std::future::ready(Ok::<_, ()>(Page {
                items: vec![marker],
                next_marker: Some(marker + 1),
                count: None,
            }))
        };
        let got = paginate(0, 7, endless).await.unwrap();
        assert_eq!(got.pages, 7);
        assert!(got.truncated);
    }

    #[tokio::test]
    async fn an_error_aborts_the_run() {
        let mut calls = 0;
        let failing = |marker: u64| {
            calls += 1;
            std::future::ready(if marker == 0 {
                Ok(Page {
                    items: vec![1, 2],
                    next_marker: Some(2),
                    count: Some(4),
                })
            } else {
                Err("boom")
            })
        };
        assert_eq!(paginate(0, 10, failing).await.unwrap_err(), "boom");
        assert_eq!(calls, 2);
    }
}

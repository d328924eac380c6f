//! `Messages`: the Message resource's operations (create, fetch, list, cancel, redact, delete).

use std::collections::HashSet;
use std::sync::Arc;

use futures_core::Stream;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use http::Method;

use super::Client;
use super::list::{ListFilter, MessagePage};
use super::message::Message;
use super::retry::Idempotency;
use super::send::SendMessage;
use super::transport::{ApiRequest, Inner};
use crate::error::{Error, Result};
use crate::optout::OptOutSource;

/// Twilio's "attempt to send to unsubscribed recipient".
const UNSUBSCRIBED: u32 = 21610;
use crate::ids::MessageSid;

/// The Messages resource of the client's account: get it with [`Client::messages`].
#[derive(Debug, Clone, Copy)]
pub struct Messages<'a> {
    client: &'a Client,
}

impl<'a> Messages<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    fn inner(&self) -> &Inner {
        &self.client.inner
    }

    /// Sends a message: `POST /Accounts/{AccountSid}/Messages.json`.
    ///
    /// The message is checked locally first ([`SendMessage::validate`]); an invalid one makes no
    /// request. The call is retried only when Twilio provably did not process it (a connection
    /// failure or a 429), never after a 5xx or a timeout, so it never sends twice.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::error::Error::InvalidRequest) from local validation;
    /// [`Error::Api`](crate::error::Error::Api) when Twilio refuses (e.g. code 21211 for a bad `To`);
    /// [`Error::Timeout`](crate::error::Error::Timeout), [`Error::Connect`](crate::error::Error::Connect),
    /// [`Error::Transport`](crate::error::Error::Transport) for transport failures (after a timeout
    /// the message may have been sent: check before resending);
    /// [`Error::Decode`](crate::error::Error::Decode) for an unreadable answer;
    /// [`Error::OptedOut`](crate::error::Error::OptedOut) when the client has an opt-out list
    /// ([`ClientBuilder::opt_outs`](super::ClientBuilder::opt_outs)) and the recipient is on it.
    pub async fn create(&self, message: &SendMessage) -> Result<Message> {
        message.validate()?;
        let form = message.to_form()?;
        let opt_outs = self.inner().opt_outs.as_ref();
        if let Some(list) = opt_outs {
            let to = message.to_number();
            if list.is_opted_out(to).await.map_err(Error::OptOutList)? {
                tracing::info!("send refused: the recipient opted out");
                return Err(Error::OptedOut);
            }
        }
        let req = ApiRequest {
            method: Method::POST,
            url: self.inner().account_url("/Messages.json"),
            form: Some(form),
            idempotency: Idempotency::Unsafe,
        };
        let result = self.inner().execute(req).await;
        if let (Err(e), Some(list)) = (&result, opt_outs)
            && e.api_error().is_some_and(|a| a.code == Some(UNSUBSCRIBED))
        {
            // Twilio says the recipient unsubscribed: remember it (best effort).
            let to = message.to_number();
            if let Err(e) = list.opt_out(to, OptOutSource::Error21610).await {
                tracing::warn!(error = %e, "could not record an opt-out");
            }
        }
        result?.json("message")
    }

    /// Fetches one message: `GET /Accounts/{AccountSid}/Messages/{Sid}.json`.
    ///
    /// # Errors
    /// [`Error::Api`](crate::error::Error::Api) (404/20404 for an unknown SID), transport and decode
    /// errors as for [`create`](Self::create); reads are also retried on 5xx and timeouts.
    pub async fn fetch(&self, sid: &MessageSid) -> Result<Message> {
        let req = ApiRequest {
            method: Method::GET,
            url: self.message_url(sid),
            form: None,
            idempotency: Idempotency::Safe,
        };
        self.inner().execute(req).await?.json("message")
    }

    /// Cancels a scheduled message: `POST .../Messages/{Sid}.json` with `Status=canceled`.
    ///
    /// # Errors
    /// [`Error::Api`](crate::error::Error::Api) with code 30409 when the message is no longer
    /// scheduled; other errors as for [`create`](Self::create) (same retry rule).
    pub async fn cancel(&self, sid: &MessageSid) -> Result<Message> {
        self.update(sid, "Status=canceled").await
    }

    /// Redacts a message's text: `POST .../Messages/{Sid}.json` with `Body=` (empty).
    ///
    /// # Errors
    /// As for [`cancel`](Self::cancel).
    pub async fn redact(&self, sid: &MessageSid) -> Result<Message> {
        self.update(sid, "Body=").await
    }

    async fn update(&self, sid: &MessageSid, form: &str) -> Result<Message> {
        let req = ApiRequest {
            method: Method::POST,
            url: self.message_url(sid),
            form: Some(form.to_owned()),
            idempotency: Idempotency::Unsafe,
        };
        self.inner().execute(req).await?.json("message")
    }

    /// Deletes a message: `DELETE .../Messages/{Sid}.json` (Twilio answers 204).
    ///
    /// A delete retried after a lost answer (a timeout or a 5xx) that finds the message gone
    /// (404) succeeds: the try before deleted it.
    ///
    /// # Errors
    /// [`Error::Api`](crate::error::Error::Api) with code 20009 when the message is not finished yet,
    /// 20404 when unknown; transport errors as for [`fetch`](Self::fetch).
    pub async fn delete(&self, sid: &MessageSid) -> Result<()> {
        let req = ApiRequest {
            method: Method::DELETE,
            url: self.message_url(sid),
            form: None,
            idempotency: Idempotency::Safe,
        };
        self.inner().execute(req).await.map(|_| ())
    }

    /// The first page of messages matching `filter`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::error::Error::InvalidRequest) for a page size outside
    /// 1..=1000 (no request made); otherwise as for [`fetch`](Self::fetch).
    pub async fn list_page(&self, filter: &ListFilter) -> Result<MessagePage> {
        first_page(self.inner(), filter).await
    }

    /// The page after `page`, following its `next_page_uri`; `None` on the last page.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::error::Error::Decode) when `next_page_uri` points off the API host;
    /// otherwise as for [`fetch`](Self::fetch).
    pub async fn next_page(&self, page: &MessagePage) -> Result<Option<MessagePage>> {
        match page.next_page_uri.as_deref() {
            Some(uri) if !uri.is_empty() => get_page(self.inner(), uri).await.map(Some),
            _ => Ok(None),
        }
    }

    /// Every message matching `filter`, following `next_page_uri` page by page.
    ///
    /// The stream owns a handle to the client, so it may outlive `self` and `filter`. An error
    /// ends it after being yielded. Use `.take(n)` to stop early (no further page is fetched).
    /// A `next_page_uri` naming a page already fetched ends it too.
    ///
    /// ```no_run
    /// # async fn demo(client: twilio_delivery::Client) -> twilio_delivery::Result<()> {
    /// use futures_util::TryStreamExt as _;
    /// use twilio_delivery::client::ListFilter;
    ///
    /// let filter = ListFilter::new().to("+15558675310");
    /// let all: Vec<_> = client.messages().list(&filter).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(
        &self,
        filter: &ListFilter,
    ) -> impl Stream<Item = Result<Message>> + Send + 'static + use<> {
        enum Next {
            First(ListFilter),
            Uri(String),
            Done,
        }
        let inner: Arc<Inner> = Arc::clone(&self.client.inner);
        // The URIs of the pages fetched so far: a page pointing back at one of them (itself, or
        // A → B → A) would loop forever, so it ends the stream.
        let seen: HashSet<String> = HashSet::new();
        stream::try_unfold(
            (inner, Next::First(filter.clone()), seen),
            |(inner, next, mut seen)| async move {
                let page = match next {
                    Next::First(filter) => first_page(&inner, &filter).await?,
                    Next::Uri(uri) => {
                        let page = get_page(&inner, &uri).await?;
                        seen.insert(uri);
                        page
                    }
                    Next::Done => return Ok::<_, crate::error::Error>(None),
                };
                if let Some(uri) = page.uri.as_deref().filter(|u| !u.is_empty()) {
                    seen.insert(uri.to_owned());
                }
                let following = match page.next_page_uri.as_deref() {
                    Some(uri) if !uri.is_empty() && !seen.contains(uri) => {
                        Next::Uri(uri.to_owned())
                    }
                    _ => Next::Done,
                };
                let items =
                    stream::iter(page.messages.into_iter().map(Ok::<_, crate::error::Error>));
                Ok(Some((items, (inner, following, seen))))
            },
        )
        .try_flatten()
        .boxed()
    }

    fn message_url(&self, sid: &MessageSid) -> url::Url {
        self.inner().account_url(&format!("/Messages/{sid}.json"))
    }
}

async fn first_page(inner: &Inner, filter: &ListFilter) -> Result<MessagePage> {
    let pairs = filter.query_pairs()?;
    let mut url = inner.account_url("/Messages.json");
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    fetch_page(inner, url).await
}

async fn get_page(inner: &Inner, uri: &str) -> Result<MessagePage> {
    let url = inner.resolve_page_uri(uri)?;
    fetch_page(inner, url).await
}

async fn fetch_page(inner: &Inner, url: url::Url) -> Result<MessagePage> {
    let req = ApiRequest {
        method: Method::GET,
        url,
        form: None,
        idempotency: Idempotency::Safe,
    };
    inner.execute(req).await?.json("message page")
}

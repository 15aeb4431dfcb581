//! Signing in with one's own HR credentials, and out.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use secrecy::SecretString;
use serde::Deserialize;

use super::session::{self, Signed};
use super::{ConsoleError, ConsoleState};
use crate::http::client_addr::client_ip;
use crate::ops::activity::{self, Actor, Channel};
use crate::ops::sessions;

/// A console user as the activity log names them.
pub fn console_actor(username: &str) -> Actor {
    Actor {
        name: username.to_owned(),
        channel: Channel::Console,
    }
}
use crate::password::{AuthError, AuthOutcome, LoginChannel};

/// The one message every refused sign-in gets, whatever the reason (wrong
/// password, locked, not a console user): the audit trail keeps the reason.
pub const REFUSED: &str = "Invalid username or password, or no access to this console.";

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    message: Option<&'a str>,
    username: &'a str,
}

fn page(status: StatusCode, message: Option<&str>, username: &str) -> Response {
    match (SignInPage { message, username }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => ConsoleError::Internal.into_response(),
    }
}

/// `GET /sign-in`.
pub async fn form(signed: Option<Signed>) -> Response {
    if signed.is_some() {
        return Redirect::to("/").into_response();
    }
    page(StatusCode::OK, None, "")
}

#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: SecretString,
}

/// `POST /sign-in`: the same check as `/authenticate` (failure floor, lockout,
/// audit row with channel `console`), then the role from `admin.*`.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let client = client_ip(peer.ip(), &headers, &state.app.trusted_proxies);
    let deadline = tokio::time::Instant::now() + state.app.request_timeout;
    let authenticator = state.app.authenticator.clone();
    let username = form.username.clone();
    // Its own task, as for /authenticate: a browser that goes away must not
    // cancel the check between counting the attempt and recording it.
    let outcome = tokio::spawn(async move {
        authenticator
            .authenticate_via(
                LoginChannel::Console,
                &username,
                form.password,
                Some(client),
                Some(deadline),
            )
            .await
    })
    .await
    .map_err(|_| ConsoleError::Internal)?;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(AuthError::Busy(_)) | Err(AuthError::Unrecorded(_)) | Err(AuthError::TimedOut) => {
            return Ok(page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The server is busy; try again shortly."),
                &form.username,
            ))
        }
        Err(AuthError::Db(e)) => return Err(e.into()),
        Err(AuthError::Source(problem)) => {
            tracing::error!(error = %problem, "console sign-in: the credentials query failed");
            return Err(ConsoleError::Internal);
        }
    };
    let role = state.role_of(&form.username);
    if outcome != AuthOutcome::Success || role.is_none() {
        if outcome == AuthOutcome::Success {
            tracing::info!(
                username = %form.username,
                "console sign-in refused: the right password, but not in admin.viewers or admin.operators"
            );
        }
        return Ok(page(
            StatusCode::UNAUTHORIZED,
            Some(REFUSED),
            &form.username,
        ));
    }
    let new = sessions::start(&state.app.db, &form.username).await?;
    activity::record(
        &state.app.db,
        &console_actor(&form.username),
        "console_sign_in",
        &form.username,
        role.map_or("", |r| r.name()),
    )
    .await?;
    tracing::info!(username = %form.username, role = role.map_or("-", |r| r.name()), "console: signed in");
    let jar = jar.add(session::session_cookie(state.tls, new.token));
    Ok((jar, Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`: ends the session in the database and drops the cookie.
pub async fn sign_out(
    State(state): State<ConsoleState>,
    signed: Signed,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    signed.check_csrf(&form.csrf)?;
    if let Some(token) = session::token(&jar, state.tls) {
        sessions::end(&state.app.db, &token).await?;
    }
    activity::record(
        &state.app.db,
        &console_actor(&signed.username),
        "console_sign_out",
        &signed.username,
        "",
    )
    .await?;
    tracing::info!(username = %signed.username, "console: signed out");
    let jar = jar.remove(Cookie::build(session::cookie_name(state.tls)).path("/"));
    Ok((jar, Redirect::to("/sign-in")).into_response())
}

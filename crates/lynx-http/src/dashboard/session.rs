//! Sign-in, sign-out and the session a page runs as. The login form is protected by a double-submit
//! token (a cookie scoped to /login and the same value in the form); signed-in forms by the session's
//! own CSRF token, compared in constant time.

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use lynx_governance::identity::{self, DashboardSession};
use lynx_model::{Mode, Principal};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::render::secure;
use crate::AppState;

pub const SESSION_COOKIE: &str = "lynx_session";
const LOGIN_CSRF_COOKIE: &str = "lynx_login_csrf";

/// What every signed-in page shows about the viewer.
#[derive(Debug, Clone, Serialize)]
pub struct Viewer {
    pub user: String,
    pub role: String,
    pub tenant: String,
    pub csrf: String,
}

pub struct SignedIn {
    pub session: DashboardSession,
    pub principal: Principal,
    pub viewer: Viewer,
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if state.pipeline.services().runtime.mode == Mode::Prod { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in viewer, or `None` (then the page redirects to the sign-in form).
pub async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<SignedIn> {
    let secret = cookie(headers, SESSION_COOKIE)?;
    let services = state.pipeline.services();
    let session = identity::session(services, &secret).await.ok()??;
    let principal = identity::principal(services, &session.who).await.ok()?;
    let viewer = Viewer {
        user: principal.user_id.to_string(),
        role: principal.role.clone(),
        tenant: principal.tenant_id.to_string(),
        csrf: session.csrf_token.clone(),
    };
    Some(SignedIn { session, principal, viewer })
}

pub fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// A page of this dashboard to return to after sign-in: a plain local path, never another site
/// (`//host`, `/\host`) and nothing that needs escaping.
pub fn local_path(next: &str) -> Option<&str> {
    let plain = next.chars().all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
    (next.starts_with('/') && !next.starts_with("//") && next.len() <= 200 && plain).then_some(next)
}

/// To the sign-in form, and back to `path` after it (the links notifications carry).
pub fn to_login_then(path: &str) -> Response {
    match local_path(path) {
        Some(p) => Redirect::to(&format!("/login?next={p}")).into_response(),
        None => to_login(),
    }
}

pub fn csrf_refused(state: &AppState) -> Response {
    state.ui.page(
        StatusCode::FORBIDDEN,
        "message.html",
        json!({"heading": "Form refused", "text": "This form carried no valid CSRF token (it may be out of date). Reload the page and try again; nothing was changed."}),
    )
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

pub async fn login_page(State(state): State<AppState>, headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    let next = local_path(&q.next);
    if signed_in(&state, &headers).await.is_some() {
        return Redirect::to(next.unwrap_or("/")).into_response();
    }
    login_form(&state, StatusCode::OK, None, next)
}

fn login_form(state: &AppState, status: StatusCode, error: Option<serde_json::Value>, next: Option<&str>) -> Response {
    let token = identity::random_token();
    let mut response = state.ui.page(status, "login.html", json!({"csrf": token, "error": error, "next": next}));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, LOGIN_CSRF_COOKIE, &token, "/login", 900));
    secure(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    api_key: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn login(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &form.csrf) {
        return csrf_refused(&state);
    }
    let next = local_path(&form.next);
    match identity::sign_in(state.pipeline.services(), form.api_key.trim()).await {
        Ok((_, secret)) => {
            let mut response = Redirect::to(next.unwrap_or("/")).into_response();
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, &secret, "/", identity::SESSION_HOURS * 3600));
            h.append(header::SET_COOKIE, set_cookie(&state, LOGIN_CSRF_COOKIE, "", "/login", 0));
            secure(response)
        }
        Err(r) => login_form(&state, StatusCode::UNAUTHORIZED, Some(json!({"code": r.code, "message": r.message, "hint": r.hint})), next),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    if !same(&me.session.csrf_token, &form.csrf) {
        return csrf_refused(&state);
    }
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        let _ = identity::sign_out(state.pipeline.services(), &secret).await;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", "/", 0));
    secure(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(super::local_path("/drafts/0190d6d4-7e7b-7cc0-a1a8-1c2b3d4e5f60"), Some("/drafts/0190d6d4-7e7b-7cc0-a1a8-1c2b3d4e5f60"));
        for bad in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/drafts/x?y=<script>", "drafts/x", ""] {
            assert_eq!(super::local_path(bad), None, "{bad}");
        }
    }
}

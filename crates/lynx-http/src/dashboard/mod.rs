//! The approval dashboard: server-rendered pages (minijinja templates built into the binary, no
//! script, no asset from anywhere else) for approvers and operators. Sign-in with an API key gives an
//! HttpOnly, SameSite=Strict session cookie; every state-changing form carries the session's CSRF
//! token. Decisions go through `lynx_governance::approvals`, the same rules as the API and CLI.

mod pages;
mod render;
mod session;

use axum::{
    Router,
    routing::{get, post},
};

use crate::AppState;

pub use render::Ui;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/approvals", get(pages::approvals))
        .route("/drafts", get(pages::drafts))
        .route("/drafts/{id}", get(pages::draft))
        .route("/drafts/{id}/approve", post(pages::approve))
        .route("/drafts/{id}/reject", post(pages::reject))
        .route("/executions", get(pages::executions))
        .route("/settlements", get(pages::settlements))
        .route("/webhooks", get(pages::webhooks))
        .route("/webhooks/redeliver", post(pages::redeliver))
        .route("/audit", get(pages::audit))
}

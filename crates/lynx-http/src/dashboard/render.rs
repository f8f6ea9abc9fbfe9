//! Rendering: the template environment (built once), Markdown previews turned into HTML with every
//! piece of raw HTML, link and image neutralised, and the security headers of every page.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use minijinja::Environment;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;

pub struct Ui {
    env: Environment<'static>,
}

impl Default for Ui {
    fn default() -> Self {
        let mut env = Environment::new();
        for (name, source) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("login.html", include_str!("templates/login.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("approvals.html", include_str!("templates/approvals.html")),
            ("drafts.html", include_str!("templates/drafts.html")),
            ("draft.html", include_str!("templates/draft.html")),
            ("executions.html", include_str!("templates/executions.html")),
            ("settlements.html", include_str!("templates/settlements.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("message.html", include_str!("templates/message.html")),
            ("webhooks.html", include_str!("templates/webhooks.html")),
        ] {
            env.add_template(name, source).expect("the built-in templates parse");
        }
        Self { env }
    }
}

impl Ui {
    /// Renders a page; `.html` templates auto-escape every value.
    pub fn page(&self, status: StatusCode, template: &str, ctx: impl Serialize) -> Response {
        let body = self
            .env
            .get_template(template)
            .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, template, "dashboard template failed");
                "<!doctype html><p>This page could not be rendered; the error is in the server log.</p>".into()
            });
        secure((status, Html(body)).into_response())
    }
}

/// No scripts at all, no framing, forms only to this origin: even markup that slipped through stays inert.
pub fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A draft's Markdown preview as HTML. The text was escaped when the draft was made; here raw HTML
/// becomes text and links and images become their text, so nothing in a preview can act.
pub fn markdown(md: &str) -> String {
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).filter_map(|event| match event {
        Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
        Event::Start(Tag::Link { .. } | Tag::Image { .. }) | Event::End(TagEnd::Link | TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::with_capacity(md.len() * 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn previews_cannot_carry_markup() {
        let html = super::markdown("### Title\n\n<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) ![i](http://x/i.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("href"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("<table>") && html.contains("<h3>"), "{html}");
    }
}

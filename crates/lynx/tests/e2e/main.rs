//! Black-box tests: the real `lynx` binary on a temporary database, driven through a real MCP client
//! (HTTP and stdio), the JSON API and the CLI.

mod contract;
mod helpers;
mod interop;
mod receiver;

mod approval_loop;
mod audit_anchor;
mod audit_verify;
mod auth;
mod bad_input;
mod browser;
mod cli;
mod concurrency;
mod domain_tools;
mod hardening;
mod kernel_file;
mod kernel_http;
mod lifecycle;
mod mcp_errors;
mod operator;
mod postgres_ops;
mod refusals;
mod tenancy;
mod wire;

/// Runs each listed test on SQLite, and on PostgreSQL when `LYNX_TEST_POSTGRES_URL` is set (CI sets it;
/// without it the PostgreSQL variants say they were skipped, or fail under `LYNX_REQUIRE_POSTGRES=1`).
macro_rules! on_both_engines {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$module::$test(crate::helpers::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(engine) = crate::helpers::Engine::postgres(stringify!($test)) {
                        super::$module::$test(engine).await
                    }
                }
            )*
        }
    };
}

on_both_engines! {
    approval_loop::an_agent_follows_a_two_approval_payment_to_execution_through_mcp,
    approval_loop::a_stdio_client_reads_and_subscribes_to_its_draft,
    approval_loop::deliveries_wait_out_a_dead_receiver_and_a_killed_lynx,
    approval_loop::nothing_waits_forever,
    approval_loop::every_transition_is_told,
    approval_loop::the_creators_own_approval_never_counts,
    audit_anchor::tampering_is_caught_against_the_signed_checkpoints,
    audit_anchor::a_run_proof_verifies_offline_and_in_another_language,
    audit_anchor::checkpoints_come_at_the_interval_at_shutdown_and_as_events,
    audit_verify::editing_one_audit_row_is_detected_and_named,
    audit_verify::audit_tail_shows_the_newest_events,
    auth::http_requires_a_valid_unrevoked_key,
    auth::stdio_refuses_to_serve_without_a_valid_key,
    auth::a_key_revoked_during_a_stdio_session_stops_working,
    bad_input::bad_input_is_refused_naming_the_field_and_audited,
    cli::status_prints_the_runbook_block_with_live_values,
    concurrency::thirty_two_concurrent_executions_succeed_exactly_once,
    concurrency::sixteen_concurrent_creations_with_one_request_id_make_one_draft,
    concurrency::a_crash_mid_execution_leaves_no_effect_and_the_retry_succeeds_once,
    domain_tools::domain_tools_over_http,
    domain_tools::domain_tools_over_stdio,
    domain_tools::permission_is_the_kernels_and_refusals_are_audited,
    hardening::an_inactive_users_key_is_refused_on_every_surface,
    hardening::money_and_dates_are_read_as_written,
    hardening::every_edge_is_answered_in_shape,
    hardening::spend_limits_hold_across_instances,
    lifecycle::payment_workflow_and_docs_lifecycles,
    lifecycle::policies_can_require_several_distinct_approvals,
    refusals::the_execution_protocol_refuses_in_order_with_the_runbooks_phrases,
    refusals::prod_requires_explicit_approval_for_high_risk_execution,
    refusals::bad_input_on_every_write_tool_is_refused_and_changes_nothing,
    tenancy::tenants_never_see_each_others_audit_rows,
    kernel_http::the_kernel_over_http,
    operator::metrics_parse_and_move,
    operator::lynx_metrics_alerts_when_failures_pass_five_percent,
    operator::the_audit_trail_exports_whole_as_csv_and_json,
}

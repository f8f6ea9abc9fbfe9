// The official MCP TypeScript SDK clients against the real lynx binary: the v1 SDK
// (@modelcontextprotocol/sdk, protocol 2025-11-25 with an `initialize` session) and the v2 client
// (@modelcontextprotocol/client, pinned to 2026-07-28), each over streamable HTTP and over stdio.
// Each lists the tools, calls all of them — the lifecycle in between, approved through the HTTP API,
// so the cell tools succeed — reads a refusal, follows a 2-approval payment by polling
// workflow.domain.status.read {draft_id} until it can be executed, and reads the draft as a resource. Both SDKs validate every structured result against
// the tool's output schema; a validation error fails the call, and anything the SDKs print (an unknown
// schema format, say) fails the test.
//
// Started by crates/lynx/tests/e2e/interop.rs with BASE_URL, AGENT_KEY, APPROVER_KEY, SECOND_APPROVER_KEY, LYNX_BIN and
// LYNX_DATABASE_URL.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set`);
  return value;
}

const BASE_URL = env('BASE_URL');
const AGENT_KEY = env('AGENT_KEY');
const APPROVER_KEY = env('APPROVER_KEY');
const SECOND_APPROVER_KEY = env('SECOND_APPROVER_KEY');

// Whatever an SDK prints is a finding. node:test reports through its own stream, not the console.
const printed = [];
for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[level] = (...args) => printed.push(`console.${level}: ${args.map((a) => (a instanceof Error ? a.stack : String(a))).join(' ')}`);
}
process.on('warning', (w) => printed.push(`process warning: ${w.name}: ${w.message}`));

const stdioEnv = () => ({ PATH: process.env.PATH, LYNX_API_KEY: AGENT_KEY, LYNX_DATABASE_URL: env('LYNX_DATABASE_URL'), LYNX_MODE: 'dev' });

const variants = [
  {
    name: 'SDK v1 (1.32) over streamable HTTP, 2025-11-25 initialize session',
    revision: '2025-11-25',
    connect: async () => {
      const client = new ClientV1({ name: 'lynx-interop-v1', version: '1.0.0' });
      const transport = new HttpV1(new URL(`${BASE_URL}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT_KEY}` } } });
      await client.connect(transport);
      return { client, revision: () => transport.protocolVersion };
    },
  },
  {
    name: 'SDK v1 (1.32) over stdio, 2025-11-25',
    revision: '2025-11-25',
    connect: async () => {
      const client = new ClientV1({ name: 'lynx-interop-v1', version: '1.0.0' });
      const transport = new StdioV1({ command: env('LYNX_BIN'), args: ['mcp'], env: stdioEnv(), stderr: 'ignore' });
      await client.connect(transport);
      // v1 speaks up to 2025-11-25 and says so in its initialize; the server accepted it (or connect would have thrown).
      return { client, revision: () => '2025-11-25' };
    },
  },
  {
    name: 'client v2 (2.4) over streamable HTTP, 2026-07-28',
    revision: '2026-07-28',
    connect: async () => {
      const client = new ClientV2({ name: 'lynx-interop-v2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      const transport = new HttpV2(new URL(`${BASE_URL}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT_KEY}` } } });
      await client.connect(transport);
      return { client, revision: () => client.getNegotiatedProtocolVersion() };
    },
  },
  {
    name: 'client v2 (2.4) over stdio, 2026-07-28',
    revision: '2026-07-28',
    connect: async () => {
      const client = new ClientV2({ name: 'lynx-interop-v2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      const transport = new StdioV2({ command: env('LYNX_BIN'), args: ['mcp'], env: stdioEnv(), stderr: 'ignore' });
      await client.connect(transport);
      return { client, revision: () => client.getNegotiatedProtocolVersion() };
    },
  },
];

/** A call that must succeed: its structured content (already validated by the SDK) and text agree. */
async function ok(client, name, args, called) {
  const result = await client.callTool({ name, arguments: args });
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result.structuredContent)}`);
  assert.ok(result.structuredContent, `${name}: structured content`);
  assert.equal(result.structuredContent.tenant_id, 'tenant-123', `${name}: the caller's tenant`);
  assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent, `${name}: text is the structured content`);
  assert.ok(result._meta?.['lynx/run_id'], `${name}: the run id`);
  called.add(name);
  return result.structuredContent;
}

/** A call that must be refused — readable, not thrown — with the given code. */
async function refused(client, name, args, code, called) {
  const result = await client.callTool({ name, arguments: args });
  assert.equal(result.isError, true, `${name} should have been refused`);
  assert.equal(result.structuredContent?.error?.code, code, JSON.stringify(result.structuredContent));
  assert.ok(result.structuredContent.error.hint, 'the refusal says what to do');
  called.add(name);
  return result.structuredContent.error;
}

async function approve(draftId, key = APPROVER_KEY) {
  const resp = await fetch(`${BASE_URL}/api/drafts/${draftId}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ notes: 'interop test' }),
  });
  assert.equal(resp.status, 200, `approve ${draftId}: ${await resp.text()}`);
}

const DOMAIN_CALLS = [
  ['finance.domain.health.read', { period: 'last_month' }],
  ['kernel.domain.registry.read', {}],
  ['tenant.domain.profile.read', {}],
  ['audit.domain.run.read', { limit: 5 }],
  ['security.domain.permission.read', { action: 'vpm.cell.payment.execute' }],
  ['workflow.domain.status.read', {}],
  ['workflow.domain.policy.read', {}],
  ['docs.domain.registry.read', {}],
  ['featureflag.domain.status.read', {}],
  ['system.domain.health.read', {}],
  ['system.domain.health.read', { include_dependencies: false }],
  ['vpm.domain.vendor.read', { vendor_id: 'V-001' }],
  ['vpm.domain.vendor.read', {}],
  ['vpm.domain.payment.status.read', {}],
];

for (const variant of variants) {
  test(variant.name, async () => {
    const { client, revision } = await variant.connect();
    try {
      assert.equal(revision(), variant.revision, 'the protocol revision in use');
      const { tools } = await client.listTools();
      const names = new Set(tools.map((t) => t.name));
      assert.equal(names.size, tools.length, 'tool names are unique');
      for (const t of tools) {
        assert.ok(t.outputSchema, `${t.name} publishes an output schema`);
      }
      const called = new Set();

      for (const [name, args] of DOMAIN_CALLS) {
        await ok(client, name, args, called);
      }

      // The lifecycle: one draft of each type, submitted, approved by a human, then executed.
      const doc = await ok(client, 'docs.cluster.draft.create', { doc_type: 'ADR', title: `Interop ${variant.revision}` }, called);
      const wf = await ok(client, 'workflow.cluster.draft.create', { workflow_kind: 'approval', name: 'Interop flow', steps: [{ name: 'review', required_role: 'approver' }] }, called);
      const pay = await ok(client, 'vpm.cluster.payment.draft.create', { vendor_id: 'V-001', amount: '42.50', currency: 'USD', due_date: '2026-12-31', invoice_refs: ['INV-1001'] }, called);
      await refused(client, 'vpm.cell.payment.execute', { draft_id: pay.draft_id }, 'DRAFT_NOT_APPROVED', called);
      for (const d of [doc, wf, pay]) {
        const submitted = await ok(client, 'docs.cell.draft.submit_for_approval', { draft_id: d.draft_id }, called);
        assert.equal(submitted.status, 'SUBMITTED');
      }
      await refused(client, 'docs.cell.draft.submit_for_approval', { draft_id: pay.draft_id }, 'ALREADY_SUBMITTED', called);
      await approve(wf.draft_id);
      await approve(pay.draft_id);
      await ok(client, 'workflow.cell.draft.publish', { draft_id: wf.draft_id }, called);
      const paid = await ok(client, 'vpm.cell.payment.execute', { draft_id: pay.draft_id }, called);
      assert.equal(paid.status, 'pending_settlement');
      await refused(client, 'vpm.cell.payment.execute', { draft_id: pay.draft_id }, 'ALREADY_EXECUTED', called);
      await ok(client, 'vpm.domain.payment.status.read', { status: 'pending_settlement' }, called);
      await ok(client, 'workflow.domain.status.read', { event_limit: 50 }, called);

      // The approval loop an agent runs: a 2-approval payment, polled until it can be executed.
      const big = await ok(client, 'vpm.cluster.payment.draft.create', { vendor_id: 'V-001', amount: '2500.00', currency: 'USD', due_date: '2026-12-31', invoice_refs: ['INV-1002'] }, called);
      const submitted = await ok(client, 'docs.cell.draft.submit_for_approval', { draft_id: big.draft_id }, called);
      assert.equal(submitted.approvals_required, 2);
      const poll = async () => (await ok(client, 'workflow.domain.status.read', { draft_id: big.draft_id, include_events: false }, called)).drafts[0];
      let state = await poll();
      assert.deepEqual([state.status, state.approvals_recorded, state.approvals_required, state.can_execute], ['SUBMITTED', 0, 2, false]);
      await approve(big.draft_id);
      state = await poll();
      assert.deepEqual([state.status, state.approvals_recorded, state.can_execute], ['SUBMITTED', 1, false]);
      assert.equal(state.decisions[0].approver_id, 'approver-001');
      await approve(big.draft_id, SECOND_APPROVER_KEY);
      state = await poll();
      assert.deepEqual([state.status, state.approvals_recorded, state.can_execute, state.execute_tool], ['APPROVED', 2, true, 'vpm.cell.payment.execute']);
      await ok(client, state.execute_tool, { draft_id: big.draft_id }, called);
      assert.equal((await poll()).status, 'EXECUTED');

      // The same draft as a resource.
      const { resourceTemplates } = await client.listResourceTemplates();
      assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), ['lynx://drafts/{draft_id}']);
      const read = await client.readResource({ uri: `lynx://drafts/${big.draft_id}` });
      assert.equal(read.contents[0].mimeType, 'application/json');
      assert.equal(JSON.parse(read.contents[0].text).status, 'EXECUTED');

      assert.deepEqual([...names].filter((n) => !called.has(n)), [], 'every listed tool was called');
    } finally {
      await client.close();
    }
    assert.deepEqual(printed, [], 'the SDK printed nothing (no validation errors, no schema warnings)');
  });
}

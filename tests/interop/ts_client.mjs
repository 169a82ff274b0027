#!/usr/bin/env node
// Interop probe: drive an MCP server with the official TypeScript SDK client.
//
// Usage:
//   node ts_client.mjs stdio [OPTIONS] -- COMMAND [ARGS...]
//   node ts_client.mjs sse URL [OPTIONS]
//   node ts_client.mjs http URL [OPTIONS]
//
// Options:
//   --call TOOL            call one tool after listing
//   --args JSON            arguments object for --call (default {})
//   --prompt NAME          get one prompt
//   --prompt-args JSON     arguments object for --prompt (default {})
//   --read URI             read one resource
//   --header "Name: Value" extra HTTP header (sse/http; repeatable)
//   --timeout MS           per-request timeout (default 30000)
//   --clean-env            stdio only: give the server the SDK's minimal default
//                          environment instead of this process's full environment
//
// Prints exactly one JSON object on stdout:
//   {transport, serverInfo, protocolVersion, capabilities, instructions,
//    tools, prompts, resources, call?, prompt?, read?}
// A list is [] when the server does not advertise that capability; a failed
// list request or a failed --call/--prompt/--read is reported in place as
//   {"error": {"code", "message", "data"?, "source": "server"|"client"}}
// ("server": a JSON-RPC error response came over the wire; "client": the SDK
// raised it locally, e.g. a timeout or output-schema validation failure).
// Exit status: 0 when the JSON was printed, 1 on connection failure (message on
// stderr, nothing on stdout), 2 on usage errors.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

const USAGE =
  "usage: node ts_client.mjs stdio [OPTIONS] -- COMMAND [ARGS...]\n" +
  "       node ts_client.mjs sse URL [OPTIONS]\n" +
  "       node ts_client.mjs http URL [OPTIONS]\n" +
  "options: --call TOOL --args JSON --prompt NAME --prompt-args JSON --read URI\n" +
  "         --header 'Name: Value' --timeout MS --clean-env";

function usageError(message) {
  process.stderr.write(`ts_client: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseJsonObject(flag, text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    usageError(`${flag} is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    usageError(`${flag} must be a JSON object`);
  }
  return value;
}

function parseArgv(argv) {
  const opts = {
    mode: argv[0],
    target: null,
    command: null,
    commandArgs: [],
    call: null,
    callArgs: {},
    prompt: null,
    promptArgs: {},
    read: null,
    headers: {},
    timeout: 30000,
    cleanEnv: false,
  };
  if (!["stdio", "sse", "http"].includes(opts.mode)) {
    usageError(`first argument must be stdio, sse or http (got ${JSON.stringify(opts.mode)})`);
  }
  let rest = argv.slice(1);
  const sep = rest.indexOf("--");
  if (opts.mode === "stdio") {
    if (sep === -1 || sep === rest.length - 1) usageError("stdio mode needs `-- COMMAND [ARGS...]`");
    opts.command = rest[sep + 1];
    opts.commandArgs = rest.slice(sep + 2);
    rest = rest.slice(0, sep);
  } else {
    if (sep !== -1) usageError(`${opts.mode} mode takes a URL, not \`-- COMMAND\``);
    if (rest.length === 0 || rest[0].startsWith("--")) usageError(`${opts.mode} mode needs a URL`);
    opts.target = rest[0];
    rest = rest.slice(1);
  }
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const takesValue = ["--call", "--args", "--prompt", "--prompt-args", "--read", "--header", "--timeout"];
    let value;
    if (takesValue.includes(flag)) {
      if (i + 1 >= rest.length) usageError(`${flag} needs a value`);
      value = rest[++i];
    }
    switch (flag) {
      case "--call": opts.call = value; break;
      case "--args": opts.callArgs = parseJsonObject(flag, value); break;
      case "--prompt": opts.prompt = value; break;
      case "--prompt-args": opts.promptArgs = parseJsonObject(flag, value); break;
      case "--read": opts.read = value; break;
      case "--header": {
        const colon = value.indexOf(":");
        if (colon <= 0) usageError(`--header must look like "Name: Value"`);
        opts.headers[value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
        break;
      }
      case "--timeout": {
        const ms = Number(value);
        if (!Number.isFinite(ms) || ms <= 0) usageError("--timeout must be a positive number of milliseconds");
        opts.timeout = ms;
        break;
      }
      case "--clean-env": opts.cleanEnv = true; break;
      default: usageError(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  return opts;
}

function makeTransport(opts) {
  if (opts.mode === "stdio") {
    const env = opts.cleanEnv ? getDefaultEnvironment() : { ...getDefaultEnvironment(), ...process.env };
    // stderr "inherit": the server's stderr shows up on this script's stderr.
    return new StdioClientTransport({ command: opts.command, args: opts.commandArgs, env, stderr: "inherit" });
  }
  let url;
  try {
    url = new URL(opts.target);
  } catch {
    usageError(`not a URL: ${JSON.stringify(opts.target)}`);
  }
  const init = Object.keys(opts.headers).length ? { requestInit: { headers: opts.headers } } : undefined;
  return opts.mode === "sse" ? new SSEClientTransport(url, init) : new StreamableHTTPClientTransport(url, init);
}

// Watches the wire: remembers the initialize result and every JSON-RPC error
// response, so errors can be attributed to the server or to the local SDK.
function instrument(transport) {
  const wire = { initializeResult: null, methodsById: new Map(), errorIds: new Set() };
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    if (message && message.method !== undefined && message.id !== undefined) {
      wire.methodsById.set(message.id, message.method);
    }
    return send(message, options);
  };
  // Protocol.connect() chains to an onmessage handler that is already set.
  transport.onmessage = (message) => {
    if (!message || message.id === undefined) return;
    const method = wire.methodsById.get(message.id);
    if (message.error !== undefined) wire.errorIds.add(message.id);
    else if (method === "initialize" && wire.initializeResult === null) wire.initializeResult = message.result;
  };
  return wire;
}

function errorInfo(err, wire, method) {
  const info = {};
  if (err instanceof McpError) {
    info.code = err.code;
    const prefix = `MCP error ${err.code}: `;
    info.message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    if (err.data !== undefined) info.data = err.data;
  } else {
    info.code = null;
    info.message = err instanceof Error ? err.message : String(err);
  }
  // Did a JSON-RPC error response for this method arrive since the last check?
  let fromServer = false;
  for (const id of wire.errorIds) {
    if (wire.methodsById.get(id) === method) fromServer = true;
    wire.errorIds.delete(id);
  }
  info.source = fromServer ? "server" : "client";
  return { error: info };
}

async function listAll(fetchPage, key) {
  const items = [];
  let cursor;
  for (let page = 0; page < 1000; page++) {
    const result = await fetchPage(cursor === undefined ? {} : { cursor });
    items.push(...(result[key] ?? []));
    cursor = result.nextCursor;
    if (!cursor) return items;
  }
  throw new Error(`${key}: more than 1000 pages, giving up`);
}

async function main() {
  const opts = parseArgv(process.argv.slice(2));
  const transport = makeTransport(opts);
  const wire = instrument(transport);
  const client = new Client({ name: "mcp-gateway-interop-ts-client", version: "0.1.0" }, { capabilities: {} });
  const reqOpts = { timeout: opts.timeout };

  try {
    await client.connect(transport, reqOpts);
  } catch (err) {
    process.stderr.write(`ts_client: failed to connect (${opts.mode}): ${err instanceof Error ? err.message : String(err)}\n`);
    try { await client.close(); } catch { /* ignore */ }
    process.exit(1);
  }

  const caps = client.getServerCapabilities() ?? {};
  const init = wire.initializeResult ?? {};
  const out = {
    transport: opts.mode,
    serverInfo: client.getServerVersion() ?? null,
    protocolVersion: init.protocolVersion ?? transport.protocolVersion ?? null,
    capabilities: caps,
    instructions: client.getInstructions() ?? null,
    tools: [],
    prompts: [],
    resources: [],
  };

  const guarded = async (method, fn) => {
    try {
      return await fn();
    } catch (err) {
      return errorInfo(err, wire, method);
    }
  };

  if (caps.tools) out.tools = await guarded("tools/list", () => listAll((p) => client.listTools(p, reqOpts), "tools"));
  if (caps.prompts) out.prompts = await guarded("prompts/list", () => listAll((p) => client.listPrompts(p, reqOpts), "prompts"));
  if (caps.resources) out.resources = await guarded("resources/list", () => listAll((p) => client.listResources(p, reqOpts), "resources"));

  if (opts.call !== null) {
    out.call = await guarded("tools/call", () => client.callTool({ name: opts.call, arguments: opts.callArgs }, undefined, reqOpts));
  }
  if (opts.prompt !== null) {
    out.prompt = await guarded("prompts/get", () => client.getPrompt({ name: opts.prompt, arguments: opts.promptArgs }, reqOpts));
  }
  if (opts.read !== null) {
    out.read = await guarded("resources/read", () => client.readResource({ uri: opts.read }, reqOpts));
  }

  if (opts.mode === "http" && transport.sessionId) {
    // Polite session teardown (HTTP DELETE); servers may answer 405, which is fine.
    try { await transport.terminateSession(); } catch (err) {
      process.stderr.write(`ts_client: terminateSession failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  try { await client.close(); } catch { /* ignore */ }

  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`ts_client: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

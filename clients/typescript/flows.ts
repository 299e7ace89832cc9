// The public documentation's flows through openapi-typescript types and openapi-fetch.
//
// Run by clients/run.sh against a `threada demo` server (THREADA_URL, THREADA_KEY),
// after `tsc --strict` has compiled it. The README's TypeScript snippet is taken from
// here.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type ErrorResponse = components["schemas"]["ErrorResponse"];

/** fetch, retrying a 429 after its Retry-After (at most `attempts` times). */
let retried = 0;
async function fetchRetrying(request: Request, attempts = 5): Promise<Response> {
  let response = await fetch(request.clone());
  for (let i = 0; i < attempts && response.status === 429; i++) {
    const seconds = Number(response.headers.get("Retry-After") ?? "1");
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    retried++;
    response = await fetch(request.clone());
  }
  return response;
}

const client = createClient<paths>({
  baseUrl: process.env.THREADA_URL,
  headers: { "X-Api-Key": process.env.THREADA_KEY },
  fetch: fetchRetrying,
});

function fail(what: string, error: ErrorResponse | undefined): never {
  throw new Error(`${what}: ${error?.error.type} ${error?.error.message}`);
}

// 1. List tickets (the documentation's first example).
const first = await client.GET("/api/v1/public/tickets", { params: { query: { limit: 25 } } });
if (!first.data) fail("list", first.error);

// 2. Create a ticket, safe to retry with an Idempotency-Key.
const body: components["schemas"]["NewTicket"] = {
  subject: "Where is my parcel?",
  priority: "normal",
  channel: "email",
  contact: { name: "Jane Customer", email: "customer@example.com" },
  tags: ["returns"],
  initial_message: { role: "user", content: "Hello, where is my parcel?" },
};
const key = `typescript-${crypto.randomUUID()}`;
const created = await client.POST("/api/v1/public/tickets", {
  params: { header: { "Idempotency-Key": key } },
  body,
});
if (!created.data) fail("create", created.error);
const ticketId = created.data.ticket.summary.ticket_id;
const replayed = await client.POST("/api/v1/public/tickets", {
  params: { header: { "Idempotency-Key": key } },
  body,
});
if (replayed.response.headers.get("Idempotent-Replayed") !== "true") throw new Error("no replay");

// 3. Run an action on it (the demo tenant's base URL is the demo's own receiver).
const action = await client.POST("/api/v1/public/tickets/{ticket_id}/actions", {
  params: { path: { ticket_id: ticketId } },
  body: {
    payload: {
      type: "custom_http",
      method: "POST",
      url: "/hooks/zapier",
      headers: { "X-Source": "threada" },
      body_json: '{"event":"ticket_updated"}',
    },
  },
});
if (!action.data) fail("action", action.error);
if (action.data.action.status !== "succeeded") throw new Error(`action ${action.data.action.status}`);

// Paging: follow next_page_token; filters are arrays (sent as status=open&status=pending).
const seen: string[] = [];
let pageToken: string | undefined;
do {
  const page = await client.GET("/api/v1/public/tickets", {
    params: { query: { limit: 2, status: ["open", "pending"], sort: "created_at", page_token: pageToken } },
  });
  if (!page.data) fail("page", page.error);
  seen.push(...page.data.items.map((item) => item.ticket_id));
  pageToken = page.data.next_page_token ?? undefined;
} while (pageToken);
if (!seen.includes(ticketId) || new Set(seen).size !== seen.length) throw new Error("paging");

// Errors: the envelope, typed.
const missing = await client.GET("/api/v1/public/tickets/{ticket_id}", {
  params: { path: { ticket_id: "tkt_0000000000000000000000000000z" } },
});
if (missing.error?.error.type !== "not_found" || !missing.error.error.request_id) {
  throw new Error("no not_found envelope");
}

// Rate limits: past the key's burst, 429s are retried after their Retry-After.
for (let i = 0; i < 80; i++) {
  const page = await client.GET("/api/v1/public/tickets", { params: { query: { limit: 1 } } });
  if (!page.data) fail("burst", page.error);
}
if (retried === 0) throw new Error("no 429 was retried");
console.log(`typescript client: ${seen.length} tickets paged, ${retried} 429s retried`);

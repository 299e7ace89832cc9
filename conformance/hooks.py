"""Schemathesis hooks for the conformance run (loaded with SCHEMATHESIS_HOOKS=hooks).

They touch positive cases only, and only values whose validity depends on something
a schema cannot state; every check stays enabled and everything else is sent as
generated:

- `page_token` is opaque and signed by the server: no generator can invent a valid
  one, so it is left out of positive cases (negative cases keep theirs).
- `Idempotency-Key` binds a key to the first request that used it: a generator that
  reuses a short key with another body rightly gets 422. Positive cases get a fresh
  key of their own.
- `body_json` must hold JSON text; `contentMediaType: application/json` says so, but
  not every phase reads that keyword. A string that is not JSON is replaced by the
  JSON encoding of itself, which is just as schema-valid.
"""

import json
import uuid

import schemathesis


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if isinstance(case.query, dict):
        case.query.pop("page_token", None)
    if case.headers is not None:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = f"conformance-{uuid.uuid4()}"
    payload = case.body.get("payload") if isinstance(case.body, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("body_json"), str):
        try:
            json.loads(payload["body_json"])
        except ValueError:
            payload["body_json"] = json.dumps(payload["body_json"])
    return case

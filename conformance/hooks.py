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
  not every phase reads that keyword. A string that is not JSON (strictly: Python's
  `NaN` and `Infinity` are not) is replaced by the JSON encoding of itself, which is
  just as schema-valid.
- `q` has a small grammar (words, "phrases", prefixes*; at least one word, at most
  20) that no regular expression understood by both the server's and Python's regex
  dialects states: a positive `q` keeps its ASCII letters, digits and spaces, up to 20
  words, or becomes "parcel" when none is left; and `sort=relevance`, which needs a
  `q` (a rule between two parameters), gets `q=parcel` when it has none.
- An action's absolute `url` is valid only on the tenant's own origins (a tenant
  setting): a generated one is replaced by a path on the tenant's base URL.
- `contact`'s "at least one of email, phone, external_id" is a `not` that some
  generators do not satisfy: a positive contact without any gets an external id.
"""

import json
import uuid

import schemathesis


def _strict_json(text):
    def refuse(constant):
        raise ValueError(constant)

    json.loads(text, parse_constant=refuse)


def _plain_query(q):
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in q).split()[:20]
    return " ".join(words) or "parcel"


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if isinstance(case.query, dict):
        case.query.pop("page_token", None)
        if isinstance(case.query.get("q"), str):
            case.query["q"] = _plain_query(case.query["q"])
        elif case.query.get("sort") == "relevance":
            case.query["q"] = "parcel"
    if case.headers is not None:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = f"conformance-{uuid.uuid4()}"
    payload = case.body.get("payload") if isinstance(case.body, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("body_json"), str):
        try:
            _strict_json(payload["body_json"])
        except ValueError:
            payload["body_json"] = json.dumps(payload["body_json"])
    if isinstance(payload, dict) and isinstance(payload.get("url"), str):
        url = payload["url"]
        if url.lower().startswith(("http://", "https://")):
            payload["url"] = "/hooks/conformance"
    contact = case.body.get("contact") if isinstance(case.body, dict) else None
    if isinstance(contact, dict) and not any(k in contact for k in ("email", "phone", "external_id")):
        contact["external_id"] = f"conformance-{uuid.uuid4()}"
    return case

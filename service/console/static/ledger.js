// Checks the sealed ledger in the reader's browser (the /ledger page).
//
// Everything that decides the result is computed here with WebCrypto: the checkpoint's
// Ed25519 signature against the key in the page's key field (C2SP signed note), the event's
// leaf hash SHA-256(0x00 || the event's bytes in the leaf's format: RFC 8785 for format 2,
// sorted-key JSON for format 1), and the RFC 9162 inclusion and consistency
// proofs up to the signed root. The server supplies only data (notes and proof hashes).

const enc = new TextEncoder();
const DASH = "\u2014";

class CheckFailed extends Error {}

// -- bytes ------------------------------------------------------------------------------------

function fromB64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new CheckFailed("not valid base64: " + text.slice(0, 20));
  }
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function toB64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// -- the verifier key and the signed note (C2SP signed-note, Ed25519) ---------------------

async function parseVerifierKey(text) {
  const parts = text.trim().split("+");
  if (parts.length < 3) throw new CheckFailed("the key is not name+keyid+base64");
  const name = parts[0];
  const hexId = parts[1];
  const raw = fromB64(parts.slice(2).join("+"));
  if (raw.length !== 33 || raw[0] !== 1) throw new CheckFailed("the key is not an Ed25519 key");
  const id = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
  const idHex = Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("");
  if (idHex !== hexId.toLowerCase()) throw new CheckFailed("the key's id does not match its key");
  const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, [
    "verify",
  ]);
  return { name, id, key };
}

async function openNote(note, vkey) {
  const cut = note.indexOf("\n\n");
  if (cut <= 0) throw new CheckFailed("the checkpoint has no text, blank line and signature");
  const body = note.slice(0, cut + 1);
  let signed = false;
  for (const line of note.slice(cut + 2).split("\n")) {
    const parts = line.split(" ");
    if (parts.length !== 3 || parts[0] !== DASH || parts[1] !== vkey.name) continue;
    const raw = fromB64(parts[2]);
    if (!equal(raw.slice(0, 4), vkey.id)) continue;
    const ok = await crypto.subtle.verify("Ed25519", vkey.key, raw.slice(4), enc.encode(body));
    if (!ok) throw new CheckFailed("the checkpoint's signature does not verify with this key");
    signed = true;
  }
  if (!signed) throw new CheckFailed("the checkpoint carries no signature by this key");
  const lines = body.split("\n");
  const size = Number(lines[1]);
  const root = fromB64(lines[2] || "");
  if (!Number.isSafeInteger(size) || size < 1 || root.length !== 32) {
    throw new CheckFailed("the checkpoint's text is malformed");
  }
  return { origin: lines[0], size, root };
}

// -- the canonical entry --------------------------------------------------------------------
//
// Format 2 (RFC 8785, JCS): keys sorted by UTF-16 code units (JavaScript's own string order),
// strings as JSON.stringify writes them, numbers as the doubles they denote written by
// Number.prototype.toString (JSON.stringify of a number), which is what RFC 8785 specifies.
// Format 1 (leaves sealed before): compact JSON, keys sorted, numbers exactly as written.

// A small JSON reader that keeps each number's text, so a format 1 event re-encodes byte for
// byte as the registry encoded it (JSON.parse would turn 100.0 into 100), and that refuses
// repeated keys (JSON.parse would keep the last).
function readJson(text) {
  let at = 0;
  const space = () => {
    while (at < text.length && " \t\n\r".includes(text[at])) at++;
  };
  const fail = (what) => {
    throw new CheckFailed(`the event is not valid JSON (${what} at character ${at})`);
  };
  function value() {
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const members = [];
      space();
      if (text[at] === "}") {
        at++;
        return { object: members };
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail("a key expected");
        const key = string();
        space();
        if (text[at++] !== ":") fail("':' expected");
        members.push([key, value()]);
        space();
        const next = text[at++];
        if (next === "}") return { object: members };
        if (next !== ",") fail("',' or '}' expected");
      }
    }
    if (c === "[") {
      at++;
      const items = [];
      space();
      if (text[at] === "]") {
        at++;
        return { array: items };
      }
      for (;;) {
        items.push(value());
        space();
        const next = text[at++];
        if (next === "]") return { array: items };
        if (next !== ",") fail("',' or ']' expected");
      }
    }
    if (c === '"') return { string: string() };
    const literal = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/.exec(
      text.slice(at),
    );
    if (!literal) fail("a value expected");
    at += literal[0].length;
    return { literal: literal[0] };
  }
  function string() {
    const match = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(
      text.slice(at),
    );
    if (!match) fail("a bad string");
    at += match[0].length;
    return JSON.parse(match[0]);
  }
  const result = value();
  space();
  if (at !== text.length) fail("text after the value");
  return result;
}

function canonical(node) {
  if ("object" in node) {
    const keys = node.object.map(([k]) => k);
    if (new Set(keys).size !== keys.length) throw new CheckFailed("the event repeats a key");
    const sorted = [...node.object].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return "{" + sorted.map(([k, v]) => JSON.stringify(k) + ":" + canonical(v)).join(",") + "}";
  }
  if ("array" in node) return "[" + node.array.map(canonical).join(",") + "]";
  if ("string" in node) return JSON.stringify(node.string);
  return node.literal;
}

function jcs(node) {
  if ("object" in node) {
    const keys = node.object.map(([k]) => k);
    if (new Set(keys).size !== keys.length) throw new CheckFailed("the event repeats a key");
    const sorted = [...node.object].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return "{" + sorted.map(([k, v]) => JSON.stringify(k) + ":" + jcs(v)).join(",") + "}";
  }
  if ("array" in node) return "[" + node.array.map(jcs).join(",") + "]";
  if ("string" in node) return JSON.stringify(node.string);
  if (["true", "false", "null"].includes(node.literal)) return node.literal;
  const number = Number(node.literal);
  if (!Number.isFinite(number)) throw new CheckFailed("the event holds a number beyond a double");
  return JSON.stringify(number);
}

const ENCODINGS = { 1: canonical, 2: jcs };

// -- RFC 9162 proofs ------------------------------------------------------------------------

async function verifyInclusion(index, size, leaf, proof, root) {
  if (!(index >= 0 && index < size)) throw new CheckFailed(`leaf ${index} is not in a tree of ${size}`);
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new CheckFailed("the inclusion proof is too long");
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      if (!(fn & 1n)) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equal(r, root)) {
    throw new CheckFailed("the inclusion proof does not lead to the signed root");
  }
}

async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (!(first > 0 && first <= second)) throw new CheckFailed("the older size must not exceed the newer");
  if (first === second) {
    if (proof.length || !equal(firstRoot, secondRoot)) throw new CheckFailed("equal sizes, different roots");
    return;
  }
  const path = [...proof];
  if ((first & (first - 1)) === 0) path.unshift(firstRoot);
  if (!path.length) throw new CheckFailed("the consistency proof is empty");
  let fn = BigInt(first - 1);
  let sn = BigInt(second - 1);
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new CheckFailed("the consistency proof is too long");
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!(fn & 1n)) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equal(fr, firstRoot) || !equal(sr, secondRoot)) {
    throw new CheckFailed("the consistency proof does not join the two signed roots");
  }
}

// -- fetching (data only) -----------------------------------------------------------------

async function fetchOk(url, as) {
  const response = await fetch(url, { headers: { Accept: as === "text" ? "text/plain" : "application/json" } });
  if (!response.ok) {
    let detail = `${response.status}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch {
      // not a problem document
    }
    throw new CheckFailed(`the registry answered ${url} with: ${detail}`);
  }
  return as === "text" ? response.text() : response.json();
}

// -- the page -------------------------------------------------------------------------------

function show(target, ok, heading, steps) {
  target.className = "result " + (ok ? "ok" : "failed");
  target.replaceChildren();
  const head = document.createElement("p");
  const strong = document.createElement("strong");
  strong.textContent = heading;
  head.append(strong);
  const list = document.createElement("ul");
  for (const step of steps) {
    const item = document.createElement("li");
    item.textContent = step;
    list.append(item);
  }
  target.append(head, list);
}

async function checkEvent(form, target) {
  const steps = [];
  try {
    const vkey = await parseVerifierKey(document.getElementById("verifier-key").value);
    const pasted = form.elements.event.value.trim();
    let seq;
    let tree = null;
    let leaf = null;
    if (pasted) {
      tree = readJson(pasted);
      const seqNode = ("object" in tree ? tree.object : []).find(([k]) => k === "seq");
      seq = seqNode ? Number(seqNode[1].literal) : NaN;
      if (!Number.isSafeInteger(seq) || seq < 1) throw new CheckFailed("the event has no seq");
    } else {
      seq = Number(form.elements.seq.value.trim());
      if (!Number.isSafeInteger(seq) || seq < 1) throw new CheckFailed("give an event's seq or paste the event");
    }
    const checkpoint = await openNote(await fetchOk("/v1/ledger/checkpoint", "text"), vkey);
    steps.push(`The checkpoint for tree size ${checkpoint.size} is signed by ${vkey.name}.`);
    const proof = await fetchOk(
      `/v1/ledger/proofs/inclusion?seq=${seq}&tree_size=${checkpoint.size}`,
      "json",
    );
    if (tree !== null) {
      // The format only says how to encode; a wrong one cannot reach the signed root.
      const format = proof.leaf_format ?? 1;
      const encode = ENCODINGS[format];
      if (!encode) throw new CheckFailed(`leaf format ${format} is unknown to this page`);
      leaf = await leafHash(enc.encode(encode(tree)));
      steps.push(`Hashed the pasted event (seq ${seq}, leaf format ${format}) here: leaf ${toB64(leaf)}.`);
    } else {
      leaf = fromB64(proof.leaf_hash);
      steps.push(`Leaf hash as the registry gives it for seq ${seq}: ${proof.leaf_hash}.`);
    }
    await verifyInclusion(
      proof.leaf_index,
      checkpoint.size,
      leaf,
      proof.hashes.map(fromB64),
      checkpoint.root,
    );
    steps.push(`The proof (${proof.hashes.length} hashes) leads from leaf ${proof.leaf_index} to the signed root.`);
    show(target, true, `Verified: event ${seq} is in the signed tree of size ${checkpoint.size}.`, steps);
  } catch (error) {
    if (!(error instanceof CheckFailed)) console.warn(error);
    show(target, false, "Not verified: " + error.message, steps);
  }
}

async function checkConsistency(form, target) {
  const steps = [];
  try {
    const vkey = await parseVerifierKey(document.getElementById("verifier-key").value);
    const first = Number(form.elements.first.value.trim());
    const second = Number(form.elements.second.value.trim());
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 1 || first > second) {
      throw new CheckFailed("give two tree sizes, the older one first");
    }
    const older = await openNote((await fetchOk(`/v1/ledger/checkpoints/${first}`, "json")).note, vkey);
    const newer = await openNote((await fetchOk(`/v1/ledger/checkpoints/${second}`, "json")).note, vkey);
    if (older.size !== first || newer.size !== second) throw new CheckFailed("a checkpoint is not for the size asked");
    steps.push(`Both checkpoints (sizes ${first} and ${second}) are signed by ${vkey.name}.`);
    const proof = await fetchOk(`/v1/ledger/proofs/consistency?first=${first}&second=${second}`, "json");
    await verifyConsistency(first, second, older.root, newer.root, proof.hashes.map(fromB64));
    steps.push(`The proof (${proof.hashes.length} hashes) joins the two signed roots.`);
    show(target, true, `Verified: the tree of size ${first} is a prefix of the tree of size ${second}.`, steps);
  } catch (error) {
    if (!(error instanceof CheckFailed)) console.warn(error);
    show(target, false, "Not verified: " + error.message, steps);
  }
}

for (const [formId, resultId, check] of [
  ["inclusion-form", "inclusion-result", checkEvent],
  ["consistency-form", "consistency-result", checkConsistency],
]) {
  const form = document.getElementById(formId);
  const target = document.getElementById(resultId);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    target.className = "result";
    target.textContent = "Checking…";
    check(form, target);
  });
}

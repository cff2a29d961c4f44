// Talking to the capdex API: JSON calls with the optional API key, images, and what the server
// offers (read from its OpenAPI document, so controls for absent endpoints can be hidden).

const KEY_STORAGE = "capdex.apiKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

let askForKey = async () => null; // replaced by the page with a dialog
export function onKeyNeeded(ask) { askForKey = ask; }

export function apiKey() { return sessionStorage.getItem(KEY_STORAGE); }
function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

function reason(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: name the field and say what is wrong with it.
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "query" && p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return `request failed (HTTP ${status})`;
}

let keyPrompt = null; // one dialog at a time, however many requests got a 401

async function withKey(doFetch) {
  let response = await doFetch();
  let wrong = false;
  while (response.status === 401) {
    keyPrompt ||= askForKey(wrong || apiKey() !== null).finally(() => { keyPrompt = null; });
    const key = await keyPrompt;
    if (!key) break;
    setKey(key);
    response = await doFetch();
    wrong = true;
  }
  return response;
}

/** A JSON request; throws ApiError with the server's reason on any non-2xx answer. */
export async function request(path, { method = "GET", params, body, signal } = {}) {
  let url = path;
  if (params) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(name, value);
    }
    const text = query.toString();
    if (text) url += `?${text}`;
  }
  const init = { method, signal, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await withKey(() => fetch(url, { ...init, headers: headers(init.headers) }));
  let data = null;
  try { data = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new ApiError(response.status, reason(data, response.status));
  return data;
}

/**
 * POST JSON and return the response unread, for answers that stream (server-sent events);
 * throws ApiError on any non-2xx answer, with the server's JSON body as `error.body`.
 */
export async function postStream(path, body, signal) {
  const extra = { "Content-Type": "application/json", Accept: "text/event-stream" };
  const response = await withKey(() => fetch(path, {
    method: "POST", signal, headers: headers(extra), body: JSON.stringify(body),
  }));
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    const error = new ApiError(response.status, reason(data, response.status));
    error.body = data;
    throw error;
  }
  return response;
}

/**
 * Show the image at `url` in `img`. Without a key the browser loads it natively (lazy, cached);
 * with a key the page fetches it with the X-API-Key header and shows it as a blob: URL, so the key
 * never appears in a URL (and so never in logs or history).
 */
export async function showImage(img, url) {
  img.classList.remove("loaded");
  const done = () => img.classList.add("loaded");
  const failed = () => img.parentElement?.classList.add("broken");
  img.addEventListener("load", done, { once: true });
  img.addEventListener("error", failed, { once: true });
  if (!apiKey()) {
    img.src = url;
    return;
  }
  try {
    const response = await withKey(() => fetch(url, { headers: headers() }));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const objectUrl = URL.createObjectURL(await response.blob());
    img.addEventListener("load", () => URL.revokeObjectURL(objectUrl), { once: true });
    img.src = objectUrl;
  } catch {
    failed();
  }
}

/** Load images only as they scroll near the viewport (needed for the blob path). */
const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    observer.unobserve(entry.target);
    showImage(entry.target, entry.target.dataset.src);
  }
}, { rootMargin: "400px" });

export function lazyImage(img, url) {
  img.dataset.src = url;
  observer.observe(img);
}

/** Download the original file of a photo (through fetch, so the key header can go along). */
export async function downloadOriginal(photoId, name) {
  const response = await withKey(() => fetch(`/api/photos/${photoId}/file`, { headers: headers() }));
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, reason(data, response.status));
  }
  const objectUrl = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: objectUrl, download: name || "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}

/** What this server offers: search parameters (with allowed values) and optional endpoints. */
export async function capabilities() {
  const spec = await request("/openapi.json");
  const paths = spec.paths || {};
  const searchParams = {};
  for (const param of paths["/api/search"]?.get?.parameters || []) {
    if (param.in !== "query") continue;
    const schema = resolve(spec, param.schema || {});
    searchParams[param.name] = {
      values: enumOf(spec, schema), format: formatOf(spec, schema), default: param.schema?.default ?? schema.default,
    };
  }
  const has = (path, method) => Boolean(paths[path]?.[method]);
  return {
    searchParams,
    browse: has("/api/photos", "get"),
    similar: has("/api/photos/{photo_id}/similar", "get"),
    editCaption: has("/api/photos/{photo_id}/caption", "put"),
    clearCaption: has("/api/photos/{photo_id}/caption", "delete"),
    recaption: has("/api/photos/{photo_id}/recaption", "post"),
    captioners: has("/api/captioners", "get"),
    jobs: has("/api/jobs", "get"),
    ask: has("/api/ask", "post"),
    askPhoto: has("/api/photos/{photo_id}/ask", "post"),
    people: has("/api/people", "get"),
  };
}

function resolve(spec, schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return spec.components?.schemas?.[name] || {};
  }
  return schema || {};
}

function variants(spec, schema) {
  schema = resolve(spec, schema);
  const options = schema.anyOf || schema.oneOf || schema.allOf;
  return options ? options.flatMap((s) => variants(spec, s)) : [schema];
}

function enumOf(spec, schema) {
  const values = variants(spec, schema).flatMap((s) => s.enum || (s.const !== undefined ? [s.const] : []));
  return values.length ? values : null;
}

function formatOf(spec, schema) {
  return variants(spec, schema).map((s) => s.format).find(Boolean) || null;
}

// capdex page: live search into a thumbnail grid, filters, paging by scrolling, the photo view
// and the index panel. Plain ES modules, no build step.

import { ApiError, capabilities, onKeyNeeded, request } from "./api.js";
import { AskPanel, PhotoQuestion } from "./ask.js";
import { card, enableGridKeys } from "./grid.js";
import { PeoplePanel } from "./people.js";
import { StatusPanel } from "./status.js";
import { Viewer } from "./viewer.js";

const PAGE = 40;
const DEBOUNCE_MS = 250;
const FILTERS = ["taken_after", "taken_before", "folder", "camera", "place", "has_text", "person", "mode", "sort"];
// Values to offer when the API document names a parameter but lists no allowed values.
const KNOWN_VALUES = {
  mode: ["hybrid", "semantic", "keyword"], sort: ["relevance", "date"], has_text: ["true", "false"],
};
const VALUE_LABELS = {
  hybrid: "Words + meaning", semantic: "Meaning only", keyword: "Exact words",
  relevance: "Best match", date: "Newest first", newest: "Newest first", oldest: "Oldest first",
  true: "Shows text", false: "Shows no text",
};
const $ = (id) => document.getElementById(id);

const state = {
  query: "",
  results: [],
  total: 0,
  loading: false,
  generation: 0, // bumps with every new search, so late answers to old ones are dropped
  controller: null,
  caps: null,
  panel: null, // the index panel, once wired up
};

// -- API key prompt ------------------------------------------------------------------------------
onKeyNeeded((wrong) => new Promise((resolve) => {
  const dialog = $("key-dialog");
  $("key-error").hidden = !wrong;
  $("key-input").value = "";
  const done = () => {
    dialog.removeEventListener("close", done);
    resolve(dialog.returnValue === "cancel" ? null : $("key-input").value.trim() || null);
  };
  dialog.addEventListener("close", done);
  dialog.returnValue = "";
  dialog.addEventListener("cancel", () => { dialog.returnValue = "cancel"; }, { once: true });
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}));

// -- filters -------------------------------------------------------------------------------------
function setUpFilters(searchParams) {
  let shown = 0;
  for (const name of FILTERS) {
    const label = document.querySelector(`[data-param="${name}"]`);
    const param = searchParams[name];
    const field = label.querySelector("input, select");
    const values = param?.values || KNOWN_VALUES[name];
    if (!param || (field.tagName === "SELECT" && !values)) {
      label.hidden = true; // this server does not offer the filter (yet)
      continue;
    }
    if (field.tagName === "SELECT") {
      // A parameter with a default needs no "default" entry: its default is preselected.
      if (param.default === undefined || param.default === null) field.append(new Option("Default", ""));
      for (const value of values) {
        const text = String(value);
        const isDefault = text === String(param.default);
        field.append(new Option(VALUE_LABELS[text] || text, text, isDefault, isDefault));
      }
    }
    shown += 1;
  }
  $("filters-none").hidden = shown > 0;
  $("filters").querySelector("button[type=reset]").hidden = shown === 0;
}

function filterValues() {
  const values = {};
  const params = state.caps?.searchParams || {};
  for (const name of FILTERS) {
    const label = document.querySelector(`[data-param="${name}"]`);
    if (label.hidden) continue;
    let value = label.querySelector("input, select").value.trim();
    if (!value || value === String(params[name]?.default)) continue; // the server's default
    if (params[name]?.format === "date-time" && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
      value += name === "taken_before" ? "T23:59:59" : "T00:00:00"; // "to" includes that day
    }
    values[name] = value;
  }
  return values;
}

function updateFilterCount() {
  const n = Object.keys(filterValues()).length;
  $("filter-count").hidden = n === 0;
  $("filter-count").textContent = String(n);
}

// -- searching -----------------------------------------------------------------------------------
function saveToUrl() {
  const params = new URLSearchParams();
  if (state.query) params.set("q", state.query);
  for (const name of FILTERS) {
    const field = document.querySelector(`[data-param="${name}"] input, [data-param="${name}"] select`);
    const isDefault = field?.value === String(state.caps?.searchParams[name]?.default);
    if (field?.value && !isDefault && !field.closest("label").hidden) params.set(name, field.value);
  }
  const text = params.toString();
  history.replaceState(null, "", `${location.pathname}${text ? `?${text}` : ""}${location.hash}`);
}

function loadFromUrl() {
  const params = new URLSearchParams(location.search);
  if (params.has("q")) $("q").value = params.get("q"); // keep what was typed while loading
  for (const name of FILTERS) {
    const field = document.querySelector(`[data-param="${name}"] input, [data-param="${name}"] select`);
    if (field && params.has(name)) field.value = params.get(name);
  }
}

async function fetchPage(offset, signal) {
  const filters = filterValues();
  if (state.query) {
    return request("/api/search", { params: { q: state.query, k: PAGE, offset, ...filters }, signal });
  }
  if (!state.caps?.browse) return { total: 0, results: [] };
  return request("/api/photos", { params: { limit: PAGE, offset }, signal });
}

/**
 * Search for what the box and filters say. The previous results and summary leave the screen at
 * once (they answer another question); `keep` keeps them while the same search is refreshed.
 */
async function search({ keep = false } = {}) {
  state.query = $("q").value.trim();
  state.generation += 1;
  state.controller?.abort();
  state.controller = new AbortController();
  state.results = [];
  state.total = 0;
  state.weak = false;
  saveToUrl();
  updateFilterCount();
  if (!keep) {
    $("results").replaceChildren();
    $("summary").textContent = state.query ? `Searching for “${state.query}”…` : "Loading…";
    $("notes").hidden = true;
    $("weak-title").hidden = true;
    $("empty").hidden = true;
    $("error").hidden = true;
  }
  await loadMore(true);
}

async function loadMore(fresh = false) {
  if (!fresh && (state.loading || state.results.length >= state.total)) return;
  const generation = state.generation;
  state.loading = true;
  $("loading").hidden = false;
  $("more").hidden = true;
  try {
    const page = await fetchPage(state.results.length, state.controller.signal);
    if (generation !== state.generation) return;
    $("error").hidden = true;
    const grid = $("results");
    if (fresh) {
      grid.replaceChildren();
      window.scrollTo({ top: 0 });
    }
    const known = new Set(state.results.map((r) => r.id));
    for (const hit of page.results) {
      if (known.has(hit.id)) continue;
      state.results.push(hit);
      grid.append(card(hit, state.results.length - 1));
    }
    // Weak matches (none cleared the cut-off) are the closest few: one page, no more.
    if (fresh) state.weak = page.results.length > 0 && page.results.every((r) => r.weak);
    // A short page means the end, even if the total said otherwise (photos may have gone).
    state.total = page.results.length < PAGE || state.weak ? state.results.length : page.total;
    renderSummary(page.notes || [], page.understood);
  } catch (error) {
    if (error.name === "AbortError" || generation !== state.generation) return;
    if (fresh) { $("results").replaceChildren(); state.results = []; state.total = 0; }
    $("summary").textContent = "";
    $("notes").hidden = true;
    $("empty").hidden = true;
    $("error").textContent = error instanceof ApiError ? error.message
      : `Server stopped: cannot reach capdex (${error.message}). Start it again, then search again.`;
    $("error").hidden = false;
    if (!(error instanceof ApiError)) state.panel?.refresh(); // the index panel says so too
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      $("loading").hidden = true;
      $("more").hidden = state.results.length >= state.total;
    }
  }
}

/** "place Tokyo · 2019-01-01 to 2019-12-31 · “cat”": what the search read out of the query. */
function understoodText(understood) {
  if (!understood) return "";
  const parts = [];
  if (understood.place) parts.push(`in ${understood.place}`);
  if (understood.taken_after || understood.taken_before) {
    parts.push(`taken ${understood.taken_after || "…"} to ${understood.taken_before || "…"}`);
  }
  if (understood.season) parts.push(understood.season);
  if (!parts.length) return "";
  return `Read as: ${understood.text ? `“${understood.text}” ` : "all photos "}${parts.join(", ")}.`;
}

function renderSummary(notes = [], understood = null) {
  const n = state.total;
  const lines = [understoodText(understood), ...notes].filter(Boolean);
  $("notes").textContent = lines.join(" ");
  $("notes").hidden = lines.length === 0;
  $("weak-title").hidden = !state.weak;
  const photos = `${n} photo${n === 1 ? "" : "s"}`;
  if (state.query && state.weak) {
    $("summary").textContent = `No photos match “${state.query}” closely.`;
  } else if (state.query) {
    $("summary").textContent = n ? `${photos} match “${state.query}”` : "";
  } else {
    $("summary").textContent = n ? `${photos}, newest first` : "";
  }
  $("empty").hidden = n > 0;
  $("empty-text").textContent = state.query
    ? `No photos match “${state.query}”. Try other words, or fewer filters.`
    : "No photos indexed yet. Open the index panel to add a folder.";
}

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// -- the photo view and the grid -----------------------------------------------------------------
function neighbour(id, delta) {
  const i = state.results.findIndex((r) => r.id === id);
  if (i < 0) return null;
  if (i + delta >= state.results.length - 2) loadMore();
  return state.results[i + delta]?.id ?? null;
}

function photoFromHash() {
  const match = /^#photo=(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function focusCard(id) {
  const el = document.querySelector(`.card[data-id="${id}"]`);
  if (el) { el.focus({ preventScroll: true }); el.scrollIntoView({ block: "nearest" }); }
}

async function main() {
  try {
    state.caps = await capabilities();
  } catch (error) {
    $("error").textContent = `Cannot reach capdex: ${error.message}`;
    $("error").hidden = false;
    return;
  }
  const captioners = state.caps.captioners ? await request("/api/captioners").catch(() => null) : null;
  setUpFilters(state.caps.searchParams);
  loadFromUrl();

  const viewer = new Viewer({
    caps: state.caps,
    captioners,
    neighbour,
    onChanged: () => refreshKeepingPlace(),
    onClosed: (id) => {
      history.replaceState(null, "", `${location.pathname}${location.search}`);
      if (id) focusCard(id);
    },
  });
  const panel = state.panel = new StatusPanel({ caps: state.caps, captioners, onJobFinished: () => refreshKeepingPlace(),
    onReconnected: () => { if (!$("error").hidden) search(); } });
  new AskPanel({ caps: state.caps });
  new PeoplePanel({ caps: state.caps, openPhoto: (id) => viewer.open(id), onChanged: () => refreshKeepingPlace() });
  new PhotoQuestion({ caps: state.caps, captioners });

  const input = $("q");
  const live = debounce(search, DEBOUNCE_MS);
  input.addEventListener("input", live);
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); search(); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && state.results.length) { event.preventDefault(); document.querySelector(".card")?.focus(); }
  });
  $("filters").addEventListener("change", (event) => { if (event.target.type !== "text") search(); });
  $("filters").addEventListener("input", debounce((event) => { if (event.target.type === "text") search(); }, DEBOUNCE_MS));
  $("filters").addEventListener("reset", () => setTimeout(search));
  $("filters-toggle").addEventListener("click", () => {
    const open = $("filters").hidden;
    $("filters").hidden = !open;
    $("filters-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("filters").querySelector("label:not([hidden]) input, label:not([hidden]) select")?.focus();
  });

  const grid = $("results");
  grid.addEventListener("click", (event) => {
    const link = event.target.closest(".card");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    viewer.open(Number(link.dataset.id));
  });
  enableGridKeys(grid, () => loadMore());
  $("more").addEventListener("click", () => loadMore());
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }, { rootMargin: "800px" }).observe($("more"));

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing && !document.querySelector("dialog[open]")) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });
  window.addEventListener("hashchange", () => {
    const id = photoFromHash();
    if (id) viewer.open(id);
  });

  await search();
  const id = photoFromHash();
  if (id) viewer.open(id);
  await panel.refresh();
  document.body.dataset.ready = "true"; // for tests: every control is wired up
}

/** Search again after a caption or index change, keeping the current query and filters. */
async function refreshKeepingPlace() {
  const y = window.scrollY;
  await search({ keep: true });
  window.scrollTo({ top: y });
}

main();

// The thumbnail grid: cards with the caption under each photo, and arrow-key movement.

import { lazyImage } from "./api.js";

export function fileName(path) {
  return (path || "").split(/[\\/]/).pop();
}

export function formatDate(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

const percent = (x) => `${Math.round(x * 100)}%`;

/** Why a photo matched, in words (from the search's per-result explanation, if it gives one). */
function explain(hit) {
  const match = hit.match;
  if (match && typeof match === "object") {
    const parts = [];
    if (match.semantic) parts.push(`meaning ${percent(match.semantic.score)}`);
    if (match.keyword?.terms?.length) {
      const where = match.keyword.fields?.length ? ` in ${match.keyword.fields.join(", ")}` : "";
      parts.push(`words “${match.keyword.terms.join("”, “")}”${where}`);
    }
    if (match.keyword?.snippet) parts.push(match.keyword.snippet);
    if (hit.ocr_snippet && !parts.includes(hit.ocr_snippet)) parts.push(`text: “${hit.ocr_snippet}”`);
    return parts.join(" · ");
  }
  const why = hit.explanation ?? hit.explain ?? hit.why;
  if (!why) return hit.ocr_snippet ? `text: “${hit.ocr_snippet}”` : "";
  if (typeof why === "string") return why;
  if (typeof why === "object") {
    return Object.entries(why)
      .filter(([, v]) => v !== null && typeof v !== "object")
      .map(([k, v]) => `${k}: ${typeof v === "number" ? Math.round(v * 1000) / 1000 : v}`)
      .join(" · ");
  }
  return "";
}

/** One result card: a link (so it can be opened in a new tab, or with Enter) to the photo. */
export function card(hit, index) {
  const li = document.createElement("li");
  const link = document.createElement("a");
  link.className = hit.weak ? "card weak" : "card";
  link.href = `#photo=${hit.id}`;
  link.dataset.index = String(index);
  link.dataset.id = String(hit.id);
  const caption = hit.caption || fileName(hit.path) || `Photo ${hit.id}`;

  const thumb = document.createElement("div");
  thumb.className = "thumb";
  const img = document.createElement("img");
  img.alt = caption;
  img.decoding = "async";
  img.loading = "lazy";
  thumb.append(img);
  lazyImage(img, `/api/photos/${hit.id}/thumbnail`);

  const text = document.createElement("div");
  text.className = "card-text";
  const p = document.createElement("p");
  p.className = "card-caption";
  p.textContent = caption;
  const meta = document.createElement("div");
  meta.className = "card-meta";
  const date = formatDate(hit.taken_at);
  if (date) meta.append(Object.assign(document.createElement("span"), { textContent: date }));
  if (hit.caption_source === "human") {
    meta.append(Object.assign(document.createElement("span"), { className: "tag human", textContent: "your caption" }));
  }
  if (typeof hit.score === "number") {
    meta.append(Object.assign(document.createElement("span"), { className: "tag", textContent: `${percent(hit.score)} match` }));
  }
  const words = hit.match?.keyword?.terms;
  if (words?.length) {
    meta.append(Object.assign(document.createElement("span"), { className: "tag words", textContent: words.join(" ") }));
  }
  text.append(p, meta);
  if (hit.ocr_snippet) { // the words the photo shows that matched
    text.append(Object.assign(document.createElement("p"), { className: "card-ocr", textContent: `“${hit.ocr_snippet}”` }));
  }
  link.append(thumb, text);
  const why = explain(hit);
  link.title = why ? `${caption}\n${why}` : caption;
  li.append(link);
  return li;
}

/** How many cards sit on one row right now (the grid is responsive). */
function columns(grid) {
  const cards = grid.querySelectorAll(".card");
  if (cards.length < 2) return 1;
  const top = cards[0].getBoundingClientRect().top;
  let n = 0;
  for (const c of cards) {
    if (Math.abs(c.getBoundingClientRect().top - top) > 2) break;
    n += 1;
  }
  return Math.max(1, n);
}

/**
 * Arrow keys move between cards (up/down by a whole row), Home/End jump; `onNeedMore` is called
 * when moving down past the last loaded card.
 */
export function enableGridKeys(grid, onNeedMore) {
  grid.addEventListener("keydown", (event) => {
    const current = event.target.closest(".card");
    if (!current || event.altKey || event.ctrlKey || event.metaKey) return;
    const cards = [...grid.querySelectorAll(".card")];
    const i = cards.indexOf(current);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(grid), ArrowUp: -columns(grid) }[event.key];
    let target = null;
    if (step !== undefined) {
      target = i + step;
      if (target >= cards.length) {
        onNeedMore?.();
        target = event.key === "ArrowDown" ? cards.length - 1 : i;
      }
      target = Math.max(0, target);
    } else if (event.key === "Home") target = 0;
    else if (event.key === "End") target = cards.length - 1;
    if (target === null) return;
    event.preventDefault();
    cards[target].focus();
    cards[target].scrollIntoView({ block: "nearest" });
  });
}

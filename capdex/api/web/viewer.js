// The photo view: a large image, its caption and where it came from, metadata, similar photos,
// caption editing and re-captioning with a chosen model.

import { ApiError, downloadOriginal, lazyImage, request, showImage } from "./api.js";
import { fillCaptioners } from "./choices.js";
import { closeOnBackdrop } from "./dialogs.js";
import { fileName, formatDate } from "./grid.js";
import { showFaces, trackFaceLayer } from "./people.js";

const $ = (id) => document.getElementById(id);

const LABELS = {
  taken_at: "Taken", camera: "Camera", lens: "Lens", lens_model: "Lens", lens_make: "Lens make",
  dimensions: "Size", size: "File size", location: "Location", place: "Place", paths: "Files",
  focal_length: "Focal length", exposure_time: "Exposure", f_number: "Aperture", iso: "ISO",
};
// Shown in their own way, or not worth showing.
const SKIP = new Set(["id", "path", "paths", "caption", "caption_source", "captions", "content_hash",
  "width", "height", "size", "taken_at", "camera_make", "camera_model", "gps", "latitude",
  "longitude", "gps_latitude", "gps_longitude", "ocr_text", "ocr_confidence", "ocr_engine", "faces",
  "place"]);

export class Viewer {
  /**
   * `caps` says which optional endpoints exist; `neighbour(delta)` gives the id of the photo
   * before/after the current one in the grid (or null); `onChanged()` refreshes the grid.
   */
  constructor({ caps, neighbour, onChanged, onClosed, captioners }) {
    this.caps = caps;
    this.neighbour = neighbour;
    this.onChanged = onChanged;
    this.onClosed = onClosed;
    this.dialog = $("viewer");
    this.photo = null;
    this.loadToken = 0;

    $("viewer-close").addEventListener("click", () => this.dialog.close());
    $("viewer-prev").addEventListener("click", () => this.step(-1));
    $("viewer-next").addEventListener("click", () => this.step(1));
    this.dialog.addEventListener("close", () => this.onClosed?.(this.photo?.id));
    closeOnBackdrop(this.dialog);
    this.dialog.addEventListener("keydown", (event) => {
      const typing = event.target.closest("input, textarea, select");
      if (typing) return;
      if (event.key === "ArrowLeft") { event.preventDefault(); this.step(-1); }
      if (event.key === "ArrowRight") { event.preventDefault(); this.step(1); }
    });

    this.placeFaces = trackFaceLayer($("viewer-img"));
    $("download").addEventListener("click", () => this.download());
    $("edit-caption").hidden = !caps.editCaption;
    $("edit-caption").addEventListener("click", () => this.startEditing());
    $("caption-cancel").addEventListener("click", () => this.stopEditing());
    $("caption-form").addEventListener("submit", (event) => { event.preventDefault(); this.saveCaption(); });
    $("clear-caption").addEventListener("click", () => this.clearCaption());

    const models = fillCaptioners($("recaption-model"), $("recaption-unavailable"), captioners);
    $("recaption-form").hidden = !(caps.recaption && models.length);
    $("recaption-form").addEventListener("submit", (event) => { event.preventDefault(); this.recaption(); });
  }

  async open(id) {
    if (!this.dialog.open) this.dialog.showModal();
    await this.load(id);
    $("viewer-close").focus();
  }

  async step(delta) {
    const id = this.photo && this.neighbour(this.photo.id, delta);
    if (id) await this.load(id);
  }

  async load(id) {
    const token = ++this.loadToken;
    this.stopEditing();
    this.message("");
    $("viewer-caption").textContent = "Loading…";
    $("viewer-source").textContent = "";
    $("viewer-meta").replaceChildren();
    $("similar").hidden = true;
    $("viewer-faces").hidden = true;
    $("viewer-people").hidden = true;
    const img = $("viewer-img");
    img.removeAttribute("src");
    img.alt = "";
    let photo;
    try {
      photo = await request(`/api/photos/${id}`);
    } catch (error) {
      if (token !== this.loadToken) return;
      $("viewer-caption").textContent = "This photo cannot be shown";
      this.message(error.message);
      return;
    }
    if (token !== this.loadToken) return; // the person moved on meanwhile
    this.photo = photo;
    history.replaceState(null, "", `${location.pathname}${location.search}#photo=${photo.id}`);
    img.alt = photo.caption || fileName(photo.path);
    showImage(img, `/api/photos/${photo.id}/preview`);
    this.render(photo);
    this.dialog.dispatchEvent(new CustomEvent("photo-shown", { detail: photo }));
    $("viewer-prev").hidden = !this.neighbour(photo.id, -1);
    $("viewer-next").hidden = !this.neighbour(photo.id, 1);
    if (this.caps.similar) this.loadSimilar(photo.id, token);
  }

  render(photo) {
    $("viewer-caption").textContent = photo.caption || "No caption yet";
    $("viewer-source").textContent = sourceLine(photo);
    $("clear-caption").hidden = !(this.caps.clearCaption && photo.caption_source === "human");
    // The text the photo shows (OCR), lines kept; hidden when it shows none or was not read.
    $("viewer-ocr").hidden = !photo.ocr_text;
    $("viewer-ocr-text").textContent = photo.ocr_text || "";
    $("viewer-ocr-source").textContent = photo.ocr_text ? [
      photo.ocr_engine ? `Read by ${photo.ocr_engine}` : "",
      typeof photo.ocr_confidence === "number" ? `${Math.round(photo.ocr_confidence * 100)}% confident` : "",
    ].filter(Boolean).join(", ") : "";
    showFaces(photo);
    this.placeFaces();
    const meta = $("viewer-meta");
    meta.replaceChildren();
    for (const [label, value] of metadata(photo)) {
      const wrap = document.createDocumentFragment();
      wrap.append(Object.assign(document.createElement("dt"), { textContent: label }));
      const dd = document.createElement("dd");
      if (Array.isArray(value)) {
        for (const line of value) dd.append(Object.assign(document.createElement("div"), { textContent: line }));
      } else dd.textContent = value;
      wrap.append(dd);
      meta.append(wrap);
    }
  }

  async loadSimilar(id, token) {
    try {
      const data = await request(`/api/photos/${id}/similar`, { params: { k: 6 } });
      if (token !== this.loadToken) return;
      const hits = (data.results || data.similar || []).filter((h) => h.id !== id).slice(0, 6);
      const list = $("similar-list");
      list.replaceChildren();
      for (const hit of hits) {
        const li = document.createElement("li");
        const link = Object.assign(document.createElement("a"), { href: `#photo=${hit.id}` });
        link.addEventListener("click", (event) => { event.preventDefault(); this.load(hit.id); });
        const img = Object.assign(document.createElement("img"), { alt: hit.caption || "", loading: "lazy" });
        lazyImage(img, `/api/photos/${hit.id}/thumbnail`);
        link.append(img);
        li.append(link, similarScore(hit));
        list.append(li);
      }
      $("similar-by").textContent = data.by === "looks"
        ? "By how they look, then by caption; the same picture first."
        : "By caption only: this photo has no image features (another captioner made its caption).";
      $("similar").hidden = hits.length === 0;
    } catch (error) {
      // A 404 that is not about the photo means the server has no such endpoint: stop asking.
      if (error instanceof ApiError && error.status === 404 && !/no photo/.test(error.message)) {
        this.caps.similar = false;
      }
      $("similar").hidden = true;
    }
  }

  startEditing() {
    if (!this.photo) return;
    $("caption-form").hidden = false;
    $("edit-caption").hidden = true;
    const input = $("caption-input");
    input.value = this.photo.caption || "";
    input.focus();
    input.select();
  }

  stopEditing() {
    $("caption-form").hidden = true;
    $("edit-caption").hidden = !this.caps.editCaption;
  }

  async saveCaption() {
    const text = $("caption-input").value.trim();
    if (!text || !this.photo) return;
    const id = this.photo.id;
    this.message("Saving…");
    try {
      await request(`/api/photos/${id}/caption`, { method: "PUT", body: { caption: text } });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405) && !/photo/.test(error.message)) {
        this.caps.editCaption = false;
        this.stopEditing();
      }
      this.message(`Not saved: ${error.message}`);
      return;
    }
    this.stopEditing();
    await this.load(id);
    this.message("Caption saved — search now uses your words.");
    $("edit-caption").focus();
    this.onChanged?.();
  }

  async clearCaption() {
    if (!this.photo) return;
    const id = this.photo.id;
    try {
      await request(`/api/photos/${id}/caption`, { method: "DELETE" });
    } catch (error) {
      this.message(`Not changed: ${error.message}`);
      return;
    }
    await this.load(id);
    this.message("Your caption is removed; the model’s caption speaks for this photo again.");
    $("edit-caption").focus();
    this.onChanged?.();
  }

  async recaption() {
    if (!this.photo) return;
    const id = this.photo.id;
    const captioner = $("recaption-model").value;
    const progress = $("recaption-progress");
    const button = $("recaption-form").querySelector("button");
    button.disabled = true;
    progress.hidden = false;
    progress.removeAttribute("value");
    this.message(`Captioning with ${captioner}…`);
    try {
      let job = await request(`/api/photos/${id}/recaption`, { method: "POST", body: { captioner } });
      while (job.state === "running") {
        await new Promise((resolve) => setTimeout(resolve, 600));
        job = await request(`/api/jobs/${job.id}`);
        if (job.total) { progress.max = job.total; progress.value = job.done; }
      }
      if (job.state !== "done") throw new Error(job.error || job.state);
      if (this.photo?.id === id) await this.load(id);
      this.message(this.photo?.caption_source === "human"
        ? `New ${captioner} caption stored; your own caption still speaks for this photo.`
        : `Captioned again with ${captioner}.`);
      this.onChanged?.();
    } catch (error) {
      this.message(`Re-captioning failed: ${error.message}`);
    } finally {
      button.disabled = false;
      progress.hidden = true;
    }
  }

  async download() {
    if (!this.photo) return;
    try {
      await downloadOriginal(this.photo.id, fileName(this.photo.path));
    } catch (error) {
      this.message(error.message);
    }
  }

  message(text) { $("viewer-message").textContent = text; }
}

function sourceLine(photo) {
  const machine = (photo.captions || []).find((c) => c.source === "machine");
  const model = machine ? `${machine.captioner || "a model"}${machine.captioner_version ? ` v${machine.captioner_version}` : ""}` : null;
  if (photo.caption_source === "human") {
    return machine ? `Your caption. ${model} said: “${machine.text}”` : "Your caption.";
  }
  return model ? `Caption by ${model}` : "";
}

function bytes(n) {
  if (typeof n !== "number") return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function location_(photo) {
  const gps = photo.gps || {};
  const lat = photo.latitude ?? photo.gps_latitude ?? gps.latitude ?? gps.lat;
  const lon = photo.longitude ?? photo.gps_longitude ?? gps.longitude ?? gps.lon;
  if (typeof lat !== "number" || typeof lon !== "number") return null;
  return `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}

function metadata(photo) {
  const rows = [];
  const taken = photo.taken_at ? `${formatDate(photo.taken_at)} ${new Date(photo.taken_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : null;
  if (taken) rows.push([LABELS.taken_at, taken]);
  const camera = [photo.camera_make, photo.camera_model].filter(Boolean).join(" ");
  if (camera) rows.push([LABELS.camera, camera]);
  if (photo.width && photo.height) rows.push([LABELS.dimensions, `${photo.width} × ${photo.height}`]);
  if (photo.size) rows.push([LABELS.size, bytes(photo.size)]);
  const place = photo.place && [photo.place.city, photo.place.region, photo.place.country]
    .filter((name, i, all) => name && all.indexOf(name) === i).join(", ");
  if (place) rows.push([LABELS.place, place]);
  const where = location_(photo);
  if (where) rows.push([LABELS.location, where]);
  for (const [key, value] of Object.entries(photo)) {
    if (SKIP.has(key) || value === null || value === undefined || value === "") continue;
    if (typeof value === "object") continue;
    rows.push([LABELS[key] || key.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase()), String(value)]);
  }
  if (photo.paths?.length) rows.push([LABELS.paths, photo.paths]);
  return rows;
}

// A similar photo's score under its thumbnail: a percentage, "Same picture" for a near-duplicate;
// the title says what went into it.
function similarScore(hit) {
  const looks = hit.match && hit.match.looks;
  const caption = hit.match && hit.match.caption;
  const percent = `${Math.round(Math.max(0, hit.score) * 100)}%`;
  const same = Boolean(looks && looks.near_duplicate);
  const parts = [];
  if (looks) parts.push(`looks ${looks.score.toFixed(2)}`);
  if (caption) parts.push(`caption ${caption.score.toFixed(2)}`);
  return Object.assign(document.createElement("span"), {
    className: same ? "similar-score same" : "similar-score",
    textContent: same ? `Same picture · ${percent}` : `${percent} alike`,
    title: `Score ${hit.score.toFixed(2)}${parts.length ? ` (${parts.join(", ")})` : ""}`,
  });
}

// Ask your photos: a question box whose answer streams in with its cited photos as thumbnails
// (POST /api/ask, server-sent events), and a question about the photo in the viewer
// (POST /api/photos/{id}/ask).

import { ApiError, postStream, request } from "./api.js";
import { card } from "./grid.js";

const $ = (id) => document.getElementById(id);
const CITATION = /\[#(\d+)\]/g;

/** The events of a server-sent event stream, as {event, data} with `data` parsed as JSON. */
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

/** Write `text` into `el`, each [#ID] of a known photo a link that opens that photo. */
function renderAnswer(el, text, known) {
  el.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(CITATION)) {
    el.append(text.slice(last, match.index));
    const id = Number(match[1]);
    if (known.has(id)) {
      const link = Object.assign(document.createElement("a"), {
        className: "cite", href: `#photo=${id}`, textContent: `#${id}`,
        title: known.get(id).caption || `Photo ${id}`,
      });
      el.append(link);
    } else {
      el.append(match[0]);
    }
    last = match.index + match[0].length;
  }
  el.append(text.slice(last));
}

export class AskPanel {
  constructor({ caps }) {
    this.controller = null;
    if (!caps.ask) return; // a server without ask: no box
    $("ask-toggle").hidden = false;
    $("ask-toggle").addEventListener("click", () => this.toggle());
    $("ask-form").addEventListener("submit", (event) => { event.preventDefault(); this.ask(); });
    $("ask-stop").addEventListener("click", () => this.controller?.abort());
    if (new URLSearchParams(location.search).has("ask")) this.toggle(true);
  }

  toggle(open = $("ask").hidden) {
    $("ask").hidden = !open;
    $("ask-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("ask-input").focus();
  }

  async ask() {
    const question = $("ask-input").value.trim();
    if (!question) return;
    this.controller?.abort();
    const controller = this.controller = new AbortController();
    const answer = $("ask-answer");
    const known = new Map();
    let text = "";
    $("ask-result").hidden = false;
    $("ask-error").hidden = true;
    $("ask-about").textContent = "Looking through your photos…";
    answer.replaceChildren();
    answer.classList.add("writing");
    this.showPhotos([], "");
    this.busy(true);
    try {
      const response = await postStream("/api/ask", { question, stream: true }, controller.signal);
      for await (const { event, data } of serverEvents(response)) {
        if (controller !== this.controller) return; // a newer question took over
        if (event === "photos") {
          for (const photo of data.photos) known.set(photo.id, photo);
          $("ask-about").textContent = data.photos.length
            ? `Reading ${data.photos.length} of ${data.total} matching photo${data.total === 1 ? "" : "s"}…` : "";
          this.showPhotos(data.photos, "Photos it reads");
        } else if (event === "delta") {
          text += data.text;
          renderAnswer(answer, text, known);
        } else if (event === "done") {
          renderAnswer(answer, data.answer, known);
          const cited = data.photos.filter((p) => p.cited);
          this.showPhotos(cited.length ? cited : data.photos, cited.length ? "Cited photos" : "Photos it read");
          $("ask-about").textContent = [
            data.model ? `Answered by ${data.model} from ${data.photos.length} photo${data.photos.length === 1 ? "" : "s"}` : "",
            ...(data.notes || []),
          ].filter(Boolean).join(" · ");
        } else if (event === "error") {
          this.fail(data.detail);
        }
      }
    } catch (error) {
      if (error.name === "AbortError") {
        $("ask-about").textContent = "Stopped.";
        return;
      }
      if (error instanceof ApiError && error.body?.photos) {
        this.showPhotos(error.body.photos, "Photos that match");
      }
      this.fail(error instanceof ApiError ? error.message : `Cannot reach capdex: ${error.message}`);
    } finally {
      if (controller === this.controller) {
        this.busy(false);
        answer.classList.remove("writing");
      }
    }
  }

  fail(message) {
    $("ask-error").textContent = message;
    $("ask-error").hidden = false;
    $("ask-about").textContent = "";
  }

  busy(on) {
    $("ask-submit").disabled = on;
    $("ask-stop").hidden = !on;
  }

  showPhotos(photos, title) {
    const list = $("ask-photos");
    list.replaceChildren(...photos.map((photo, i) => card(photo, i)));
    $("ask-photos-title").textContent = title;
    $("ask-photos-title").hidden = photos.length === 0;
  }
}

/** The question box in the photo view: a vision model answers about the photo shown. */
export class PhotoQuestion {
  constructor({ caps, captioners }) {
    this.photoId = null;
    this.token = 0;
    if (!caps.askPhoto) return;
    const form = $("photo-ask-form");
    form.hidden = false;
    const select = $("photo-ask-captioner");
    const unavailable = captioners?.unavailable || {};  // not installed here: they cannot answer either
    const names = (captioners?.captioners || []).filter((name) => !(name in unavailable));
    const fallback = captioners?.default ? `${captioners.default} (the server’s)` : "the server’s captioner";
    select.append(new Option(fallback, ""));
    for (const name of names) if (name !== captioners.default) select.append(new Option(name, name));
    $("photo-ask-captioner").closest("label").hidden = names.length === 0;
    $("viewer").addEventListener("photo-shown", (event) => {
      if (event.detail.id !== this.photoId) $("photo-ask-answer").textContent = "";
      this.photoId = event.detail.id;
    });
    form.addEventListener("submit", (event) => { event.preventDefault(); this.ask(); });
  }

  async ask() {
    const question = $("photo-ask-input").value.trim();
    const id = this.photoId;
    if (!question || !id) return;
    const token = ++this.token;
    const out = $("photo-ask-answer");
    out.classList.remove("error");
    out.textContent = "Looking at the photo…";
    const captioner = $("photo-ask-captioner").value || undefined;
    try {
      const data = await request(`/api/photos/${id}/ask`, { method: "POST", body: { question, captioner } });
      if (token === this.token) out.textContent = data.answer || "(no answer)";
    } catch (error) {
      if (token !== this.token) return;
      out.classList.add("error");
      out.textContent = error.message;
    }
  }
}

// People (issue 14): the People sheet (face crops, name on click, merge, a person's photos) and
// the faces on a photo in the photo view (boxes with names, and the list of who is in it).

import { lazyImage, request, showImage } from "./api.js";
import { closeOnBackdrop } from "./dialogs.js";
import { fileName } from "./grid.js";

const $ = (id) => document.getElementById(id);

export class PeoplePanel {
  /** `openPhoto(id)` shows a photo in the photo view; `onChanged()` refreshes the grid. */
  constructor({ caps, openPhoto, onChanged }) {
    this.dialog = $("people");
    this.openPhoto = openPhoto;
    this.onChanged = onChanged;
    this.people = [];
    $("people-toggle").hidden = !caps.people;
    $("people-toggle").addEventListener("click", () => this.open());
    $("people-close").addEventListener("click", () => this.dialog.close());
    closeOnBackdrop(this.dialog);
    $("person-photos-list").addEventListener("click", (event) => {
      const link = event.target.closest("a[data-id]");
      if (!link) return;
      event.preventDefault();
      this.dialog.close();
      this.openPhoto(Number(link.dataset.id));
    });
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    $("person-photos").hidden = true;
    await this.refresh();
  }

  message(text) { $("people-message").textContent = text; }

  async refresh() {
    try {
      this.people = (await request("/api/people")).people;
    } catch (error) {
      this.message(error.message);
      return;
    }
    this.message(this.people.length ? "" : "No people yet: index with faces on (capdex index --faces).");
    $("people-list").replaceChildren(...this.people.map((person) => this.card(person)));
  }

  card(person) {
    const item = Object.assign(document.createElement("li"), { className: "person" });
    item.dataset.id = person.id;
    const face = document.createElement("img");
    face.alt = person.name ? `${person.name}’s face` : "An unnamed person’s face";
    if (person.cover_face) lazyImage(face, `/api/faces/${person.cover_face}/thumbnail`);
    const name = Object.assign(document.createElement("button"), {
      type: "button", className: `link person-name${person.name ? "" : " unnamed"}`,
      textContent: person.name || "Add a name", title: "Name this person",
    });
    const counts = Object.assign(document.createElement("span"), {
      className: "muted", textContent: `${person.faces} face${person.faces === 1 ? "" : "s"} · ${person.photos} photo${person.photos === 1 ? "" : "s"}`,
    });
    const form = document.createElement("form");
    form.className = "name-form";
    form.hidden = true;
    const input = Object.assign(document.createElement("input"), {
      type: "text", maxLength: 200, value: person.name || "", placeholder: "Name", ariaLabel: "Name",
    });
    form.append(input, Object.assign(document.createElement("button"), {
      type: "submit", className: "primary small", textContent: "Save name",
    }));
    name.addEventListener("click", () => { form.hidden = false; input.focus(); input.select(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await this.act(() => request(`/api/people/${person.id}`, { method: "PUT", body: { name: input.value } }));
    });

    const row = Object.assign(document.createElement("div"), { className: "row" });
    const photos = Object.assign(document.createElement("button"), {
      type: "button", className: "ghost small", textContent: "Photos",
    });
    photos.addEventListener("click", () => this.showPhotos(person));
    const others = this.people.filter((p) => p.id !== person.id);
    const into = Object.assign(document.createElement("select"), { ariaLabel: "Merge into" });
    into.append(new Option("Same person as…", ""));
    for (const other of others) into.append(new Option(other.name || `Unnamed #${other.id}`, other.id));
    into.addEventListener("change", async () => {
      if (!into.value) return;
      await this.act(() => request(`/api/people/${person.id}/merge`, { method: "POST", body: { into: Number(into.value) } }));
    });
    row.append(photos);
    item.append(face, name, counts, form, row);
    if (others.length) item.append(into);
    return item;
  }

  async act(call) {
    try {
      await call();
    } catch (error) {
      this.message(error.message);
      return;
    }
    await this.refresh();
    this.onChanged?.();
  }

  async showPhotos(person) {
    let data;
    try {
      data = await request(`/api/people/${person.id}/photos`);
    } catch (error) {
      this.message(error.message);
      return;
    }
    $("person-photos-title").textContent = `Photos of ${person.name || "this person"}`;
    $("person-photos-list").replaceChildren(...data.results.map((photo) => {
      const li = document.createElement("li");
      const link = Object.assign(document.createElement("a"), { href: `#photo=${photo.id}` });
      link.dataset.id = photo.id;
      const img = Object.assign(document.createElement("img"), { alt: photo.caption || fileName(photo.path) });
      showImage(img, `/api/photos/${photo.id}/thumbnail`);
      link.append(img);
      li.append(link);
      return li;
    }));
    $("person-photos").hidden = false;
  }
}

/** Keep the face layer over the photo as it loads and the window resizes (call once). */
export function trackFaceLayer(img) {
  const place = () => {
    Object.assign($("viewer-faces").style, {
      left: `${img.offsetLeft}px`, top: `${img.offsetTop}px`,
      width: `${img.offsetWidth}px`, height: `${img.offsetHeight}px`,
    });
  };
  img.addEventListener("load", place);
  window.addEventListener("resize", place);
  return place;
}

/** Boxes with names over the photo, and the list of who is in it (the photo view). */
export function showFaces(photo) {
  const faces = photo.faces || [];
  const layer = $("viewer-faces");
  layer.replaceChildren(...faces.map((face) => {
    const [x, y, w, h] = face.box;
    const box = Object.assign(document.createElement("div"), { className: "face-box" });
    box.dataset.person = face.person_id ?? "";
    Object.assign(box.style, { left: `${x * 100}%`, top: `${y * 100}%`, width: `${w * 100}%`, height: `${h * 100}%` });
    box.append(Object.assign(document.createElement("span"), { textContent: face.person_name || "Unnamed" }));
    return box;
  }));
  layer.hidden = !faces.length;
  $("viewer-people").hidden = !faces.length;
  $("viewer-people-list").replaceChildren(...faces.map((face) => Object.assign(
    document.createElement("li"), { textContent: face.person_name || "Unnamed person" })));
}

// The index panel: counts, the running job with its progress, starting and stopping a job.

import { ApiError, request } from "./api.js";
import { fillCaptioners } from "./choices.js";
import { closeOnBackdrop } from "./dialogs.js";

const $ = (id) => document.getElementById(id);
const STAGES = { starting: "Starting", scan: "Looking for photos", hash: "Checking files",
  caption: "Captioning", ocr: "Reading text in photos", embed: "Indexing captions" };

export class StatusPanel {
  /** `onJobFinished()` is called when a job that was running ends (to refresh results). */
  constructor({ caps, captioners, onJobFinished, onReconnected }) {
    this.caps = caps;
    this.onJobFinished = onJobFinished;
    this.onReconnected = onReconnected;
    this.dialog = $("status");
    this.running = null;
    this.timer = null;

    $("status-button").addEventListener("click", () => this.open());
    $("status-close").addEventListener("click", () => this.dialog.close());
    closeOnBackdrop(this.dialog);
    $("index-form").addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    $("job-cancel").addEventListener("click", () => this.cancel());

    fillCaptioners($("index-captioner"), $("index-unavailable"), captioners);
    $("index-form").hidden = !caps.jobs;
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  /** Read counts and jobs; keeps polling while a job runs. */
  async refresh() {
    clearTimeout(this.timer);
    let status = null;
    let jobs = null;
    try {
      [status, jobs] = await Promise.all([
        request("/api/status"),
        this.caps.jobs ? request("/api/jobs") : Promise.resolve(null),
      ]);
    } catch (error) {
      if (error instanceof ApiError) {
        $("index-message").textContent = error.message;
      } else {
        this.offline(error);
      }
      this.timer = setTimeout(() => this.refresh(), 5_000);
      return;
    }
    this.online();
    this.renderCounts(status);
    const current = jobs?.current || null;
    this.renderJob(current);
    if (jobs) this.renderJobs(jobs);
    const wasRunning = this.running;
    this.running = current;
    if (wasRunning && !current) {
      $("index-message").textContent = ""; // "Started." is over: the job list says how it went
      this.onJobFinished?.();
    }
    // Fast while a job runs; slowly otherwise, to notice jobs started elsewhere (another tab).
    const delay = current ? 700 : this.dialog.open ? 5_000 : 20_000;
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  /** The server does not answer: say so, and show no counts or job that may be stale. */
  offline(error) {
    const button = $("status-button");
    button.classList.remove("busy");
    button.classList.add("offline");
    $("status-label").textContent = "Server stopped";
    button.title = `Cannot reach capdex (${error.message}); retrying`;
    $("status-counts").replaceChildren();
    $("job").hidden = true;
    this.running = null;
    $("index-message").textContent = "Cannot reach the capdex server: it has stopped or the "
      + "network is down. This page carries on when it answers again.";
    $("index-message").classList.add("error");
    document.body.dataset.server = "lost";
  }

  online() {
    if (document.body.dataset.server !== "lost") return;
    $("status-button").classList.remove("offline");
    $("status-button").title = "";
    $("index-message").textContent = "";
    $("index-message").classList.remove("error");
    document.body.dataset.server = "ok";
    this.onReconnected?.();
  }

  renderCounts(status) {
    const button = $("status-button");
    button.classList.toggle("busy", Boolean(this.running));
    const counts = $("status-counts");
    counts.replaceChildren();
    // What wrote the stored captions, and the model new photos get (they can differ).
    const by = Object.entries(status.captioned_by || {}).map(([name, n]) => `${name} ${n}`);
    const rows = [["Photos", status.photos], ["Searchable", status.vectors],
      ["Not readable", status.errors],
      ...(by.length ? [["Captioned by", by.join(", "), true]] : []),
      [by.length ? "Default captioner" : "Captioner", status.captioner, true]];
    for (const [label, value, text] of rows) {
      const div = document.createElement("div");
      const dd = Object.assign(document.createElement("dd"), { textContent: String(value) });
      if (text) dd.className = "text";
      div.append(Object.assign(document.createElement("dt"), { textContent: label }), dd);
      counts.append(div);
    }
    if (!this.running) $("status-label").textContent = `${status.photos} photos`;
  }

  renderJob(job) {
    const button = $("status-button");
    button.classList.toggle("busy", Boolean(job));
    $("job").hidden = !job;
    $("index-form").querySelector("button[type=submit]").disabled = Boolean(job);
    if (!job) return;
    const stage = STAGES[job.stage] || job.stage;
    const pct = job.total ? Math.round((100 * job.done) / job.total) : null;
    $("status-label").textContent = pct === null ? `${stage}…` : `${stage} ${pct}%`;
    const what = job.kind === "recaption" ? `Re-captioning with ${job.captioner}` : `Indexing with ${job.captioner}`;
    $("job-text").textContent = `${what}: ${stage}${job.total ? ` — ${job.done} of ${job.total}` : "…"}`;
    const bar = $("job-progress");
    if (job.total) { bar.max = job.total; bar.value = job.done; } else bar.removeAttribute("value");
  }

  renderJobs(jobs) {
    const roots = jobs.photo_roots || [];
    $("index-off").hidden = roots.length > 0;
    $("index-paths").placeholder = roots.join("\n");
    $("index-form").querySelector("button[type=submit]").disabled ||= roots.length === 0;
    const list = $("job-list");
    list.replaceChildren();
    $("jobs-section").hidden = jobs.jobs.length === 0;
    for (const job of jobs.jobs.slice(0, 5)) {
      const when = new Date(job.started_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      const s = job.summary;
      const result = job.state === "done" && s
        ? `${s.new} new, ${s.changed} changed, ${s.removed} removed, ${s.recaptioned} re-captioned, ${s.failed} failed`
        : job.error || job.state;
      list.append(Object.assign(document.createElement("li"), {
        textContent: `${when} · ${job.kind} · ${job.captioner} — ${result}`,
      }));
    }
  }

  async start() {
    const paths = $("index-paths").value.split("\n").map((p) => p.trim()).filter(Boolean);
    const body = { paths, captioner: $("index-captioner").value || null, recaption: $("index-recaption").checked };
    $("index-message").textContent = "";
    try {
      this.running = await request("/api/index", { method: "POST", body });
      $("index-message").textContent = "Started.";
    } catch (error) {
      $("index-message").textContent = error.message;
    }
    await this.refresh();
  }

  async cancel() {
    if (!this.running) return;
    try {
      await request(`/api/jobs/${this.running.id}/cancel`, { method: "POST" });
      $("job-text").textContent = "Stopping after the current batch…";
    } catch (error) {
      $("index-message").textContent = error.message;
    }
  }
}

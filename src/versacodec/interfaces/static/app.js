"use strict";
// The comparison page: upload → start a job → poll its progress → split view, table and cards.
// Plain DOM code without libraries, so the page works offline from the package's own files.

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const POLL_MS = 400;
const state = { config: null, imageId: null, stem: "image", jobId: null, views: [], split: 50 };

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: fall back to the status line */ }
  if (!response.ok) throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
  return body;
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ set-up from the server's capabilities
// Until /api/config answers, the page shows "loading" where the samples, codecs and model go
// (index.html), not empty lists that look like a model without any.
function clearLoading() {
  for (const node of document.querySelectorAll(".loading")) node.remove();
}

async function init() {
  const config = await api("/api/config");
  clearLoading();
  state.config = config;
  $("model").textContent = `model ${config.model.id}`;
  $("bpp").value = config.default_bpp;
  for (const name of config.samples) {
    const button = element("button", { type: "button", title: `sample: ${name}`, "data-sample": name });
    button.append(element("img", { src: `/samples/${name}`, alt: name }));
    button.addEventListener("click", () => useSample(name));
    $("samples").append(button);
  }
  for (const baseline of config.baselines) {
    const label = element("label");
    label.append(element("input", { type: "checkbox", value: baseline.name, checked: "" }), ` ${baseline.label}`);
    $("baselines").append(label);
  }
  if (config.task_profiles.length) {
    for (const name of config.task_profiles) $("task").append(element("option", { value: name }, name));
    $("task-row").hidden = false;
  }
  const generative = config.decoders.includes("generative");
  $("dec-generative").disabled = !generative;
  $("dec-generative").checked = generative;
  $("generative-note").hidden = generative;
  // A generative decoder without a diffusion prior (v5) is one pass: no steps, guidance or seed.
  const prior = generative && config.default_steps !== null;
  $("generative-options").hidden = !prior;
  if (prior) {
    $("steps").value = config.default_steps;
    $("cfg").value = config.default_cfg;
  }
  const missing = config.overlays.filter((overlay) => !overlay.available);
  if (missing.length) {
    $("overlay-note").textContent = missing.map((o) => `${o.name} overlay unavailable: ${o.reason}`).join("; ");
    $("overlay-note").hidden = false;
  }
  if (missing.length === config.overlays.length) $("overlays").checked = false;
}

// ------------------------------------------------------------------ image input
async function useFile(blob, name) {
  showError($("upload-error"), "");
  const limit = state.config.max_upload_bytes;
  if (blob.size > limit) {
    showError($("upload-error"), `Cannot use ${name}: it is ${(blob.size / 1e6).toFixed(1)} MB, above the limit `
      + `of ${(limit / 1e6).toFixed(1)} MB.`);
    return;
  }
  let info;
  try {
    info = await api("/api/images", { method: "POST", body: blob,
      // The server takes image/* or octet-stream bodies only (types no other site can send without
      // asking first); a file of another type is sent as bytes and the server says what it is.
      headers: { "Content-Type": blob.type.startsWith("image/") ? blob.type : "application/octet-stream" } });
  } catch (error) {
    showError($("upload-error"), `Cannot use ${name}: ${error.message}`);
    return;
  }
  state.imageId = info.id;
  state.stem = name.replace(/\.[^.]*$/, "") || "image";
  state.jobId = null;
  const notes = info.notes.length ? ` (${info.notes.join("; ")})` : "";
  $("image-info").textContent = `${name}: ${info.width}×${info.height} pixels${notes}`;
  setViews([{ key: "original", label: "original", src: `/api/images/${info.id}.png`, overlays: {},
    width: info.width, height: info.height }]);
  $("results").hidden = true;
  $("tags-box").hidden = true;
  $("cards").replaceChildren();
  $("messages").replaceChildren();
  $("run").disabled = false;
}

async function useSample(name) {
  const response = await fetch(`/samples/${name}`);
  await useFile(await response.blob(), name);
}

function setUpDropZone() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) useFile(file, file.name);
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) useFile(file, file.name);
  });
}

// ------------------------------------------------------------------ jobs
function checkedValues(selector) {
  return [...document.querySelectorAll(selector)].filter((box) => box.checked && !box.disabled).map((b) => b.value);
}

async function run() {
  showError($("job-error"), "");
  const settings = {
    image: state.imageId, bpp: $("bpp").value, decoders: checkedValues("#dec-direct, #dec-generative"),
    baselines: checkedValues("#baselines input"), overlays: $("overlays").checked,
    task: $("task-row").hidden ? null : $("task").value, layers: $("layers").value,
  };
  if (settings.decoders.includes("generative") && !$("generative-options").hidden) {
    Object.assign(settings, { steps: $("steps").value, cfg: $("cfg").value, seed: $("seed").value });
  }
  $("run").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(settings) });
    state.jobId = job.id;
    $("progress-box").hidden = false;
    await poll(job.id);
  } catch (error) {
    showError($("job-error"), error.message);
  } finally {
    $("run").disabled = false;
  }
}

async function poll(jobId) {
  for (;;) {
    const status = await api(`/api/jobs/${jobId}`);
    $("progress").value = status.progress;
    $("stage").textContent = status.state === "queued" ? "waiting for the previous job" : status.stage;
    if (status.state === "failed") throw new Error(status.error);
    if (status.state === "done") {
      if (jobId === state.jobId) showResult(jobId, status.result);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// ------------------------------------------------------------------ results
function fileUrl(jobId, name) {
  return `/api/jobs/${jobId}/files/${encodeURIComponent(name)}`;
}

function showResult(jobId, result) {
  const size = { width: result.width, height: result.height };
  const views = [{ key: "original", label: "original", src: fileUrl(jobId, "original.png"),
    overlays: result.original.overlays, ...size }];
  for (const r of result.renditions) {
    views.push({ key: r.key, label: `${r.label} · ${r.bpp.toFixed(4)} bpp`, src: fileUrl(jobId, r.image),
      overlays: r.overlays, ...size });
  }
  setViews(views, result.renditions.length ? result.renditions[0].key : "original");
  showTags(result.tags);
  showTable(jobId, result);
  showCards(views);
  $("messages").replaceChildren(...result.messages.concat(result.notes.map((n) => `input: ${n}`))
    .map((m) => element("li", {}, m)));
}

function showTags(tags) {
  $("tags").replaceChildren(...(tags.length ? tags.map((t) => element("span", { class: "chip", title: `ImageNet class ${t.id}` }, t.name))
    : [element("span", { class: "info" }, "none: this model sends no tags, or the tagger was not confident")]));
  $("tags-box").hidden = false;
}

function count(overlays, name) {
  return overlays[name] ? String(overlays[name].length) : "–";
}

// A metric the server could not compute (its network is not installed) is null: shown as a dash.
function metric(value, digits) {
  return value === null || value === undefined ? "–" : value.toFixed(digits);
}

function downloadLink(href, filename, text) {
  return element("a", { href, download: filename }, text);
}

function showTable(jobId, result) {
  const body = $("results").querySelector("tbody");
  const original = element("tr", { "data-key": "original" });
  for (const text of ["original", "", "", "", "", "", `${result.width}×${result.height}`, "",
    count(result.original.overlays, "detection"), count(result.original.overlays, "faces"), ""]) {
    original.append(element("td", {}, text));
  }
  const rows = [original];
  for (const r of result.renditions) {
    const row = element("tr", { "data-key": r.key });
    const cells = [["label", r.label], ["bytes", String(r.bytes)], ["bpp", r.bpp.toFixed(4)],
      ["psnr", metric(r.psnr, 2)], ["lpips", metric(r.lpips, 4)], ["dists", metric(r.dists, 4)],
      ["setting", r.setting], ["seconds", r.seconds.toFixed(2)],
      ["boxes", count(r.overlays, "detection")], ["faces", count(r.overlays, "faces")]];
    for (const [name, text] of cells) row.append(element("td", { class: name }, text));
    const extension = r.file.split(".").pop();
    const coded = r.file === "versacodec.vcx" ? `${state.stem}.vcx` : `${state.stem}-${r.key}.${extension}`;
    const links = element("td", { class: "download" });
    links.append(downloadLink(fileUrl(jobId, r.file), coded, `.${extension}`),
      downloadLink(fileUrl(jobId, r.image), `${state.stem}-${r.key}.png`, "PNG"));
    row.append(links);
    rows.push(row);
  }
  for (const row of rows) row.addEventListener("click", () => chooseRight(row.dataset.key));
  body.replaceChildren(...rows);
  $("results").hidden = false;
}

function showCards(views) {
  $("cards").replaceChildren(...views.map((shown) => {
    const card = element("div", { class: "card", "data-key": shown.key });
    const picture = element("div", { class: "picture" });
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "overlay");
    picture.append(element("img", { src: shown.src, alt: shown.label }), svg);
    card.append(picture, element("p", { class: "title" }, shown.label));
    card.addEventListener("click", () => chooseRight(shown.key));
    return card;
  }));
  // Drawn once the cards are laid out: label sizes depend on the shown scale.
  for (const card of $("cards").children) {
    const shown = view(card.dataset.key);
    drawOverlays(card.querySelector("svg"), shown, card.clientWidth / shown.width);
  }
}

// ------------------------------------------------------------------ split view
function setViews(views, rightKey = "original") {
  state.views = views;
  for (const id of ["left", "right"]) {
    $(id).replaceChildren(...views.map((v) => element("option", { value: v.key }, v.label)));
  }
  $("left").value = "original";
  $("right").value = rightKey;
  $("placeholder").hidden = true;
  renderSplit();
}

function chooseRight(key) {
  $("right").value = key;
  renderSplit();
}

function view(key) {
  return state.views.find((v) => v.key === key) || state.views[0];
}

function renderSplit() {
  if (!state.views.length) return;
  const scale = layout();
  const sides = { left: view($("left").value), right: view($("right").value) };
  for (const [side, shown] of Object.entries(sides)) {
    const layer = $(`layer-${side}`);
    const image = layer.querySelector("img");
    if (image.getAttribute("src") !== shown.src) image.src = shown.src;
    drawOverlays(layer.querySelector("svg"), shown, scale);
    $(`label-${side}`).textContent = shown.label;
  }
  for (const row of document.querySelectorAll("#results tbody tr")) {
    row.classList.toggle("selected", row.dataset.key === sides.right.key);
  }
}

// Sizes the split view for the zoom setting and places the divider; returns screen px per image px.
function layout() {
  const { width, height } = state.views[0];
  const zoom = $("zoom").value;
  const scale = zoom === "fit"
    ? Math.min(($("viewport").clientWidth - 2) / width, (window.innerHeight * 0.6 - 2) / height)
    : Number(zoom);
  const stage = $("stage-area");
  stage.style.width = `${Math.round(width * scale)}px`;
  stage.style.height = `${Math.round(height * scale)}px`;
  // Zoomed in on purpose: show the pixels as they are, not smoothed.
  stage.classList.toggle("zoomed", zoom !== "fit" && scale > 1);
  $("layer-right").style.clipPath = `inset(0 0 0 ${state.split}%)`;
  $("handle").style.left = `${state.split}%`;
  $("handle").setAttribute("aria-valuenow", String(Math.round(state.split)));
  return scale;
}

function setUpSplit() {
  const stage = $("stage-area");
  const moveTo = (event) => {
    const rect = stage.getBoundingClientRect();
    state.split = Math.min(100, Math.max(0, ((event.clientX - rect.left) / rect.width) * 100));
    if (state.views.length) layout();
  };
  stage.addEventListener("pointerdown", (event) => {
    stage.setPointerCapture(event.pointerId);
    moveTo(event);
  });
  stage.addEventListener("pointermove", (event) => {
    if (stage.hasPointerCapture(event.pointerId)) moveTo(event);
  });
  $("handle").addEventListener("keydown", (event) => {
    const step = { ArrowLeft: -2, ArrowRight: 2 }[event.key];
    if (step) {
      state.split = Math.min(100, Math.max(0, state.split + step));
      if (state.views.length) layout();
    }
  });
  for (const id of ["left", "right", "show-boxes", "show-faces"]) $(id).addEventListener("change", renderSplit);
  $("zoom").addEventListener("change", renderSplit);
  window.addEventListener("resize", renderSplit);
}

// Boxes are in image pixels; the SVG's viewBox maps them onto the picture at any zoom. Labels
// and landmark dots are sized in screen pixels (`scale`: screen px per image px) to stay legible.
function drawOverlays(svg, shown, scale) {
  svg.setAttribute("viewBox", `0 0 ${shown.width} ${shown.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.replaceChildren();
  const font = 12 / scale;
  const shape = (tag, attributes) => {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    svg.append(node);
    return node;
  };
  const box = (b, cls, text) => {
    shape("rect", { x: b[0], y: b[1], width: b[2], height: b[3], class: cls, "vector-effect": "non-scaling-stroke" });
    shape("text", { x: b[0] + 2, y: Math.max(font, b[1] - 3), "font-size": font }).textContent = text;
  };
  if ($("show-boxes").checked) {
    for (const d of shown.overlays.detection || []) box(d.box, "box", `${d.label} ${d.score.toFixed(2)}`);
  }
  if ($("show-faces").checked) {
    for (const f of shown.overlays.faces || []) {
      box(f.box, "face", `face ${f.score.toFixed(2)}`);
      for (const [x, y] of f.landmarks) shape("circle", { cx: x, cy: y, r: 2.5 / scale, class: "landmark" });
    }
  }
}

setUpDropZone();
setUpSplit();
$("run").addEventListener("click", run);
init().catch((error) => {
  clearLoading();
  $("model").textContent = "";
  showError($("upload-error"), `Cannot reach the server: ${error.message}`);
});

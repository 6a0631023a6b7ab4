// artgate operator console: live updates of the overview (server-sent
// events) and uploads from the browse page. Every page reads without it.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";

  function setText(name, value) {
    for (const el of document.querySelectorAll('[data-live="' + name + '"]')) {
      el.textContent = value;
    }
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function renderFills(fills) {
    const body = document.querySelector("#fills tbody");
    if (!body) return;
    body.replaceChildren();
    if (fills.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell(tr, "No upstream fetch is running.");
      td.colSpan = 6;
      body.appendChild(tr);
      return;
    }
    for (const f of fills) {
      const tr = document.createElement("tr");
      cell(tr, f.remote);
      cell(tr, f.key, "key");
      cell(tr, f.phase);
      const td = cell(tr, "");
      if (f.percent !== null && f.percent !== undefined) {
        const p = document.createElement("progress");
        p.max = 100;
        p.value = f.percent;
        p.textContent = Math.round(f.percent) + "%";
        td.appendChild(p);
        td.appendChild(document.createTextNode(" "));
      }
      td.appendChild(document.createTextNode(f.progress));
      cell(tr, String(f.waiters), "num");
      cell(tr, f.elapsed, "num");
      body.appendChild(tr);
    }
  }

  function setChart(id, svg) {
    const fig = document.getElementById(id);
    // The SVG is made and escaped by the gateway itself.
    if (fig && svg) fig.innerHTML = svg;
  }

  function live() {
    if (!document.getElementById("fills") || !window.EventSource) return;
    const events = new EventSource("/ui/events");
    events.onmessage = function (msg) {
      let d;
      try { d = JSON.parse(msg.data); } catch (e) { return; }
      setText("rate", d.rate);
      setText("hit_ratio", d.hit_ratio);
      setText("requests", String(d.requests));
      setText("served", d.served);
      setText("fetched", d.fetched);
      setText("saved", d.saved);
      for (const o of d.outcomes) setText("outcome-" + o.outcome, String(o.count));
      setChart("chart-requests", d.chart_requests);
      setChart("chart-bytes", d.chart_bytes);
      renderFills(d.fills);
      document.body.dataset.liveUpdates = String((Number(document.body.dataset.liveUpdates) || 0) + 1);
    };
    // The browser reconnects by itself; nothing to report on the page.
    events.onerror = function () {};
  }

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  function upload() {
    const form = document.getElementById("upload");
    if (!form) return;
    const out = document.getElementById("upload-result");
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const path = form.elements.path.value.replace(/^\/+/, "");
      const file = form.elements.file.files[0];
      if (!path || !file) return;
      out.textContent = "Uploading…";
      out.className = "";
      try {
        const r = await fetch("/ui/remotes/" + encodeURIComponent(form.dataset.remote) + "/files/" + encodePath(path), {
          method: "PUT",
          body: file,
          headers: { "X-CSRF-Token": csrf, "Content-Type": file.type || "application/octet-stream" },
          credentials: "same-origin",
        });
        if (r.ok) {
          out.textContent = "Uploaded " + path + ".";
          out.className = "good";
          window.location.reload();
        } else {
          let text = "The gateway answered " + r.status + ".";
          try { const j = await r.json(); if (j.error) text = j.error; } catch (e) { /* not JSON */ }
          out.textContent = "Upload refused: " + text;
          out.className = "bad";
        }
      } catch (e) {
        out.textContent = "Upload failed: " + e;
        out.className = "bad";
      }
    });
  }

  live();
  upload();
})();

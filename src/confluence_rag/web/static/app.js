// confluence-rag web UI: live job progress, copy buttons, and the Cloud / Data Center switch.
// Everything works without this file; it only makes pages livelier. No inline scripts: the
// Content-Security-Policy allows scripts from /static only.
"use strict";

(function () {
  var DONE_STATES = { completed: true, failed: true, cancelled: true };

  function setText(root, field, value) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el) { el.textContent = value; }
  }

  function render(root, job) {
    var counters = job.counters || {};
    var percent = Math.max(0, Math.min(100, Number(job.percent) || 0));
    var bar = root.querySelector('[data-field="bar"]');
    if (bar) { bar.value = percent; bar.textContent = Math.round(percent) + "%"; }
    setText(root, "percent", Math.round(percent) + "%");
    setText(root, "stage", job.stage || job.status);
    setText(root, "status", job.status);
    // The server computes pages_done (one definition, in ingest/progress.py).
    setText(root, "done", String(job.pages_done || 0));
    setText(root, "total", String(counters.pages_listed || 0));
    setText(root, "rate", job.pages_per_second == null ? "–" : String(job.pages_per_second));
    if (job.log && job.log.length) { setText(root, "log", job.log[job.log.length - 1]); }
    root.setAttribute("data-status", job.status);
  }

  function finished(root, status) {
    root.setAttribute("data-status", status);
    root.classList.add("job-done");
    // Reload once so the card shows fresh page counts and the job's summary; drop the
    // one-off notice ("Source added...") from the address so it is not shown again.
    window.setTimeout(function () { window.location.replace(window.location.pathname); }, 1200);
  }

  function poll(root, url) {
    var etag = null;
    function tick() {
      var headers = etag ? { "If-None-Match": etag } : {};
      fetch(url, { headers: headers, credentials: "same-origin" }).then(function (response) {
        var wait = Number(response.headers.get("X-Poll-Interval")) || 2;
        if (response.status === 304) { return window.setTimeout(tick, wait * 1000); }
        if (!response.ok) { throw new Error("progress: HTTP " + response.status); }
        etag = response.headers.get("ETag");
        return response.json().then(function (job) {
          render(root, job);
          if (DONE_STATES[job.status]) { finished(root, job.status); }
          else { window.setTimeout(tick, Math.min(wait, 2) * 1000); }
        });
      }).catch(function () { window.setTimeout(tick, 5000); });
    }
    tick();
  }

  function follow(root) {
    var id = root.getAttribute("data-progress-id");
    var base = "/api/progress/" + encodeURIComponent(id);
    if (!window.EventSource) { poll(root, base); return; }
    var heard = false;
    var source = new EventSource(base + "/events");
    source.addEventListener("progress", function (event) {
      heard = true;
      render(root, JSON.parse(event.data));
    });
    source.addEventListener("end", function (event) {
      source.close();
      finished(root, JSON.parse(event.data).status);
    });
    source.onerror = function () {
      // The stream failed (proxy buffering, auth, server restart): fall back to polling.
      source.close();
      if (!root.classList.contains("job-done")) { poll(root, base); }
    };
    window.setTimeout(function () {
      if (!heard && source.readyState !== EventSource.CLOSED) { source.close(); poll(root, base); }
    }, 8000);
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand("copy");
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  function setupCopy(button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy-target"));
      if (!target) { return; }
      copyText(target.textContent).then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Press Ctrl+C";
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      });
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  }

  function setupFlavour(form) {
    // Only the credentials of the chosen deployment are required (and sent).
    function apply() {
      var checked = form.querySelector('input[name="flavour"]:checked');
      var flavour = checked ? checked.value : "cloud";
      form.querySelectorAll("[data-required-for]").forEach(function (input) {
        var active = input.getAttribute("data-required-for") === flavour;
        input.required = active;
        input.disabled = !active;
      });
    }
    form.querySelectorAll('input[name="flavour"]').forEach(function (radio) {
      radio.addEventListener("change", apply);
    });
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-progress-id]").forEach(follow);
    document.querySelectorAll("[data-copy-target]").forEach(setupCopy);
    document.querySelectorAll("[data-flavour-form]").forEach(setupFlavour);
  });
})();

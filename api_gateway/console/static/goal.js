// The goal page: draws the DAG (Cytoscape.js with the dagre layout) coloured by step
// status and a timeline with one bar per step attempt, and keeps both, the status and
// the details below them up to date from the goal's event stream
// (GET /v1/goals/{id}/events). No build step: plain script, served as is.
(function () {
  "use strict";

  var body = document.body;
  var goalId = body.dataset.goalId;
  var COLOURS = {
    pending: "#c8ccd2", queued: "#8fb3e8", running: "#2f7de1", succeeded: "#2e9e5b",
    failed: "#d64541", skipped: "#9aa0a6", awaiting_approval: "#e0a526"
  };
  var state = { cy: null, shape: "", refreshing: false, again: false, source: null };
  window.taskforceConsole = state;  // for the browser tests and the curious

  function stepLabel(step) {
    return step.id + ": " + (step.tool || step.kind);
  }

  function drawGraph(data) {
    var shape = data.steps.map(function (s) {
      return s.id + "<" + s.dependencies.join(",");
    }).join(";");
    if (!state.cy || shape !== state.shape) {
      var elements = [];
      data.steps.forEach(function (s) {
        elements.push({ data: { id: "s" + s.id, label: stepLabel(s), status: s.status } });
      });
      var known = {};
      data.steps.forEach(function (s) { known[s.id] = true; });
      data.steps.forEach(function (s) {
        s.dependencies.forEach(function (d) {
          if (known[d]) {
            elements.push({ data: { id: "e" + d + "-" + s.id, source: "s" + d, target: "s" + s.id } });
          }
        });
      });
      if (state.cy) { state.cy.destroy(); }
      state.cy = window.cytoscape({
        container: document.getElementById("dag"),
        elements: elements,
        userZoomingEnabled: true,
        wheelSensitivity: 0.2,
        style: [
          { selector: "node", style: {
            "background-color": function (n) { return COLOURS[n.data("status")] || "#c8ccd2"; },
            "label": "data(label)", "font-size": 11, "color": "#1d2330",
            "text-valign": "bottom", "text-margin-y": 4, "width": 26, "height": 26,
            "border-width": 2, "border-color": "#ffffff" } },
          { selector: "node[status = 'running']", style: { "border-color": "#1d2330" } },
          { selector: "edge", style: {
            "width": 1.5, "line-color": "#b8bec7", "target-arrow-color": "#b8bec7",
            "target-arrow-shape": "triangle", "curve-style": "bezier" } }
        ],
        layout: { name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 60, padding: 20 }
      });
      state.shape = shape;
    } else {
      data.steps.forEach(function (s) {
        state.cy.getElementById("s" + s.id).data("status", s.status);
      });
    }
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function drawTimeline(data) {
    var box = document.getElementById("timeline");
    var t0 = Date.parse(data.created_at);
    var end = Date.parse(data.finished_at || data.now);
    data.runs.forEach(function (r) {
      end = Math.max(end, Date.parse(r.finished_at || data.now));
    });
    var span = Math.max(end - t0, 1000);
    var rows = {};
    var order = [];
    data.runs.forEach(function (r) {
      if (!rows[r.step_id]) { rows[r.step_id] = []; order.push(r.step_id); }
      rows[r.step_id].push(r);
    });
    var names = {};
    data.steps.forEach(function (s) { names[s.id] = stepLabel(s); });
    box.textContent = "";
    if (!order.length) {
      box.appendChild(el("p", "hint", "No step has started yet."));
      return;
    }
    order.sort(function (a, b) { return a - b; });
    order.forEach(function (stepId) {
      var row = el("div", "tl-row");
      row.appendChild(el("div", "tl-label", names[stepId] || ("step " + stepId)));
      var track = el("div", "tl-track");
      rows[stepId].forEach(function (r) {
        var start = Date.parse(r.started_at);
        var stop = Date.parse(r.finished_at || data.now);
        var outcome = r.outcome || "running";
        var bar = el("div", "tl-bar " + outcome + (r.attempt > 1 ? " retry" : ""));
        bar.style.left = (100 * (start - t0) / span).toFixed(2) + "%";
        bar.style.width = Math.max(0.4, 100 * (stop - start) / span).toFixed(2) + "%";
        bar.textContent = (r.attempt > 1 ? "↻" : "") + "#" + r.attempt;
        bar.title = "step " + stepId + " attempt " + r.attempt + ": " + outcome +
          " on " + r.worker + ", " + ((stop - start) / 1000).toFixed(2) + " s" +
          (r.error ? "\n" + r.error : "");
        bar.dataset.outcome = outcome;
        track.appendChild(bar);
      });
      row.appendChild(track);
      box.appendChild(row);
    });
    var axis = el("div", "tl-axis");
    axis.appendChild(el("span", "", "0 s"));
    axis.appendChild(el("span", "", (span / 1000).toFixed(1) + " s"));
    box.appendChild(axis);
  }

  function setStatus(status) {
    var badge = document.getElementById("goal-status");
    badge.textContent = status;
    badge.className = "status " + status;
  }

  function refresh() {
    if (state.refreshing) { state.again = true; return; }
    state.refreshing = true;
    var base = "/console/goals/" + goalId;
    Promise.all([
      fetch(base + "/data", { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }),
      fetch(base + "/details", { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : null;
      })
    ]).then(function (results) {
      var data = results[0];
      drawGraph(data);
      drawTimeline(data);
      setStatus(data.status);
      // Server-rendered and autoescaped by Jinja2 on the same origin.
      if (results[1] !== null) { document.getElementById("details").innerHTML = results[1]; }
      if (data.final) {
        document.getElementById("cancel").disabled = true;
        body.dataset.final = "true";
      }
    }).catch(function (err) {
      document.getElementById("live").textContent = "refresh failed: " + err.message;
    }).then(function () {
      state.refreshing = false;
      if (state.again) { state.again = false; setTimeout(refresh, 200); }
    });
  }

  function follow() {
    if (body.dataset.final === "true" || !window.EventSource) { return; }
    var live = document.getElementById("live");
    var source = new EventSource("/v1/goals/" + goalId + "/events");
    state.source = source;
    source.onopen = function () { live.textContent = "live"; };
    source.addEventListener("step", refresh);
    source.addEventListener("goal", refresh);
    source.addEventListener("end", function () {
      source.close();
      live.textContent = "ended";
      refresh();
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) { live.textContent = "disconnected"; }
      else { live.textContent = "reconnecting…"; }
    };
  }

  function cancel() {
    var button = document.getElementById("cancel");
    var result = document.getElementById("cancel-result");
    button.disabled = true;
    fetch("/v1/goals/" + goalId + "/cancel", {
      method: "POST", credentials: "same-origin",
      headers: { "X-Taskforce-Console": "1" }
    }).then(function (r) {
      return r.json().then(function (payload) {
        if (!r.ok) { throw new Error(payload.detail || ("HTTP " + r.status)); }
        result.textContent = "cancelled";
        refresh();
      });
    }).catch(function (err) {
      result.textContent = "not cancelled: " + err.message;
      button.disabled = body.dataset.final === "true";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("cancel").addEventListener("click", cancel);
    refresh();
    follow();
  });
})();

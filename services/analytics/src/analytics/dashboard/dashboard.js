// The analytics dashboard: draws a client's (or the studio's) usage as SVG, from this
// service's JSON API, with the bearer token the page was opened with (`#token=…`).
// No library: the page is small, and every figure comes from the API as it is.
"use strict";

(function () {
  const API = "/api/analytics";
  const TOKEN_KEY = "analytics.dashboard.token";
  // The kinds of Workout Type Distribution, in order: the spec's two always (green and
  // orange), the others when there are any (as the text chart does).
  const KINDS = [
    { key: "solo", label: "Solo Workouts", colour: "#4CAF50", always: true },
    { key: "trainerLed", label: "Trainer Sessions", colour: "#FF9800", always: true },
    { key: "trainerAssisted", label: "Trainer-Assisted", colour: "#1E88E5", always: false },
    { key: "group", label: "Group Sessions", colour: "#8E24AA", always: false },
  ];
  // Session Credits: Used, Remaining, Held and Expired (when not zero), Total.
  const CREDITS = [
    { key: "used", label: "Used", colour: "#607D8B", always: true },
    { key: "remaining", label: "Remaining", colour: "#4CAF50", always: true },
    { key: "held", label: "Held", colour: "#FFC107", always: false },
    { key: "expired", label: "Expired", colour: "#9E9E9E", always: false },
    { key: "total", label: "Total", colour: "#3F51B5", always: true },
  ];
  const TYPE_NAMES = {
    solo: "Solo", "trainer-led": "Trainer-led", "trainer-assisted": "Trainer-assisted",
    group: "Group",
  };
  const LABEL_WIDTH = 130;
  const BAR_WIDTH = 150;
  const ROW_HEIGHT = 28;
  const MAX_BACKOFF_MS = 30000;

  const $ = (id) => document.getElementById(id);
  let SVG_NS = null; // taken from the page's own <svg>: no namespace URL written here
  let token = null;
  let claims = {};
  let view = null; // {kind: "client", userId} or {kind: "studio"}
  let live = null; // the open stream's AbortController

  // --- the token ------------------------------------------------------------------------

  // The client a sign-in link asks to open first (`#token=…&client=ID`), for staff and
  // trainers; the API still decides whether they may read it.
  let linkedClient = null;

  function takeToken() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const fresh = fragment.get("token");
    const client = fragment.get("client");
    if (client && /^\d+$/.test(client) && Number(client) > 0) {
      linkedClient = client;
    }
    if (fresh) {
      sessionStorage.setItem(TOKEN_KEY, fresh);
      // Out of the address bar (and its history) at once.
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  // For display only: who the token says the caller is. The API decides what they may read.
  function claimsOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes)) || {};
    } catch (_) {
      return {};
    }
  }

  function rolesOf(payload) {
    const roles = payload.roles || (payload.realm_access && payload.realm_access.roles) || [];
    return Array.isArray(roles) ? roles.map(String) : [String(roles)];
  }

  // --- messages -------------------------------------------------------------------------

  function say(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text;
  }

  class Refused extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  function refusalText(error) {
    if (error.status === 401) {
      return "Sign in again: the token was refused (" + error.message + ").";
    }
    if (error.status === 403) {
      return "Not allowed: " + error.message;
    }
    if (error.status === 422) {
      return "Check the dates: " + error.message;
    }
    return "Analytics answered " + error.status + ": " + error.message;
  }

  function clearData() {
    $("report").hidden = true;
    for (const id of ["distribution", "credits"]) {
      $(id).replaceChildren();
    }
    for (const id of ["figures", "weeks", "recent-workouts", "ledger"]) {
      $(id).tBodies[0].replaceChildren();
    }
  }

  // --- the API --------------------------------------------------------------------------

  async function getJson(path) {
    const response = await fetch(API + path, {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    if (!response.ok) {
      throw new Refused(response.status, await detailOf(response));
    }
    return response.json();
  }

  async function detailOf(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") {
        return body.detail;
      }
      if (Array.isArray(body.detail) && body.detail.length) {
        return body.detail.map((d) => d.msg || String(d)).join("; ");
      }
    } catch (_) {
      // not JSON: the status says enough
    }
    return response.statusText || "refused";
  }

  function rangeQuery() {
    const query = new URLSearchParams();
    if ($("from").value) {
      query.set("from", $("from").value);
    }
    if ($("to").value) {
      query.set("to", $("to").value);
    }
    const text = query.toString();
    return text ? "?" + text : "";
  }

  // --- drawing --------------------------------------------------------------------------

  function svgElement(name, attributes, text) {
    const element = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      element.setAttribute(key, String(value));
    }
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  // Rows of {label, value, suffix, colour, attributes, title, valueId}: bars proportional
  // to the largest value, a label before each and its figure after it.
  function drawBars(svg, rows) {
    const largest = Math.max(0, ...rows.map((row) => row.value));
    const parts = rows.map((row, index) => {
      const y = index * ROW_HEIGHT;
      const length = row.value > 0 && largest > 0
        ? Math.max(2, Math.round((row.value / largest) * BAR_WIDTH)) : 0;
      const group = svgElement("g", Object.assign({ role: "img", tabindex: 0 }, row.attributes));
      // The SVG title is for assistive technology; the tooltip shows it on hover and focus.
      const show = () => showTooltip(group, row.title);
      group.addEventListener("mouseenter", show);
      group.addEventListener("focus", show);
      group.addEventListener("mouseleave", hideTooltip);
      group.addEventListener("blur", hideTooltip);
      group.append(
        svgElement("title", {}, row.title),
        svgElement("text", { x: 0, y: y + 18 }, row.label),
        svgElement("rect", {
          x: LABEL_WIDTH, y: y + 5, width: length, height: ROW_HEIGHT - 10, fill: row.colour,
          rx: 2,
        }),
        svgElement(
          "text",
          Object.assign({ x: LABEL_WIDTH + length + 6, y: y + 18 }, row.valueId ? { id: row.valueId } : {}),
          String(row.value) + row.suffix,
        ),
      );
      return group;
    });
    svg.replaceChildren(...parts);
    svg.setAttribute("viewBox", "0 0 360 " + Math.max(rows.length * ROW_HEIGHT, 1));
  }

  function showTooltip(element, text) {
    const tip = $("tooltip");
    const box = element.getBoundingClientRect();
    tip.textContent = text;
    tip.style.left = Math.round(box.left + window.scrollX + LABEL_WIDTH / 2) + "px";
    tip.style.top = Math.round(box.top + window.scrollY - 28) + "px";
    tip.hidden = false;
  }

  function hideTooltip() {
    $("tooltip").hidden = true;
  }

  function percentText(share) {
    return Number(share.percentage).toFixed(1);
  }

  function kindsShown(usage) {
    return KINDS.filter((kind) => kind.always || (usage[kind.key] && usage[kind.key].count > 0))
      .map((kind) => ({ kind, share: usage[kind.key] || { count: 0, percentage: 0 } }));
  }

  function drawDistribution(usage) {
    drawBars($("distribution"), kindsShown(usage).map(({ kind, share }) => {
      const percentage = percentText(share);
      const tooltip = share.count + " workouts (" + percentage + "%)";
      return {
        label: kind.label + ":",
        value: share.count,
        suffix: " (" + percentage + "%)",
        colour: kind.colour,
        title: tooltip,
        attributes: {
          "data-kind": kind.key,
          "data-count": share.count,
          "data-percentage": percentage,
          "aria-label": kind.label + ": " + tooltip,
        },
      };
    }));
  }

  function drawCredits(credits) {
    const shown = CREDITS.filter((figure) => figure.always || (credits[figure.key] || 0) !== 0);
    drawBars($("credits"), shown.map((figure) => {
      const value = credits[figure.key] || 0;
      return {
        label: figure.label + ":",
        value,
        suffix: "",
        colour: figure.colour,
        title: figure.label + ": " + value + " credits",
        valueId: "credits-" + figure.key,
        attributes: {
          "data-credit": figure.key,
          "data-value": value,
          "aria-label": figure.label + ": " + value + " credits",
        },
      };
    }));
  }

  function cell(text, options) {
    const element = document.createElement(options && options.header ? "th" : "td");
    if (options && options.header) {
      element.scope = "row";
    }
    if (options && options.number) {
      element.className = "number";
    }
    if (options && options.swatch) {
      const swatch = document.createElement("span");
      swatch.className = "swatch " + options.swatch;
      swatch.setAttribute("aria-hidden", "true");
      element.append(swatch);
    }
    element.append(document.createTextNode(text));
    return element;
  }

  function row(...cells) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }

  function fillFigures(usage, caption) {
    $("figures-caption").textContent = caption;
    const rows = KINDS.map((kind) => {
      const share = usage[kind.key] || { count: 0, percentage: 0 };
      const tr = row(
        cell(kind.label, { header: true, swatch: kind.key }),
        cell(String(share.count), { number: true }),
        cell(percentText(share) + "%", { number: true }),
      );
      tr.dataset.kind = kind.key;
      return tr;
    });
    rows.push(row(cell("All workouts", { header: true }), cell(String(usage.total), { number: true }), cell("", {})));
    if (usage.credits) {
      for (const figure of CREDITS.concat([{ key: "available", label: "Available" }])) {
        const tr = row(
          cell("Credits " + figure.label.toLowerCase(), { header: true }),
          cell(String(usage.credits[figure.key] || 0), { number: true }),
          cell("", {}),
        );
        tr.dataset.credit = figure.key;
        rows.push(tr);
      }
    }
    $("figures").tBodies[0].replaceChildren(...rows);
  }

  function fillWeeks(weeks) {
    $("weeks").tBodies[0].replaceChildren(...weeks.map((week) => row(
      cell(week.week, { header: true }),
      ...[week.total, week.solo.count, week.trainerLed.count, week.trainerAssisted.count,
        week.group.count].map((n) => cell(String(n), { number: true })),
    )));
  }

  function when(text) {
    if (!text) {
      return "(undated)";
    }
    const date = new Date(text);
    return isNaN(date) ? text : date.toLocaleString();
  }

  function fillRecent(recent) {
    $("recent-workouts").tBodies[0].replaceChildren(...recent.workouts.map((workout) => row(
      cell(when(workout.date)),
      cell(TYPE_NAMES[workout.sessionType] || workout.sessionType),
      cell(workout.trainerId == null ? "" : "#" + workout.trainerId),
    )));
    $("ledger").tBodies[0].replaceChildren(...recent.ledger.map((entry) => row(
      cell(when(entry.at)),
      cell(entry.type + (entry.detail ? " (" + entry.detail + ")" : "")
        + (entry.sessionId == null ? "" : ", session " + entry.sessionId)),
      cell((entry.change > 0 ? "+" : "") + entry.change, { number: true }),
      cell(String(entry.remaining), { number: true }),
    )));
  }

  function showUsage(usage) {
    drawDistribution(usage);
    drawCredits(usage.credits);
    fillFigures(usage, "Workout types and session credits of client " + view.userId);
  }

  // --- loading a view -------------------------------------------------------------------

  async function load() {
    stopLive();
    clearData();
    if (!view) {
      say("idle", "Enter a client id to see their usage.");
      return;
    }
    const range = rangeQuery();
    say("loading", "Loading…");
    try {
      if (view.kind === "studio") {
        const studio = await getJson("/session-usage" + range);
        drawDistribution(studio);
        fillFigures(studio, "Workout types of the whole studio");
        fillWeeks(studio.weeks);
        $("subject").textContent = "Whole studio";
      } else {
        const [usage, recent] = await Promise.all([
          getJson("/" + view.userId + "/session-usage" + range),
          getJson("/" + view.userId + "/recent"),
        ]);
        showUsage(usage);
        fillRecent(recent);
        $("subject").textContent = "Client " + view.userId;
      }
    } catch (error) {
      clearData();
      say(error instanceof Refused ? (error.status === 401 || error.status === 403 ? "denied" : "error") : "error",
        error instanceof Refused ? refusalText(error) : "Analytics could not be reached: " + error.message);
      return;
    }
    const studio = view.kind === "studio";
    $("credits-section").hidden = studio;
    $("weeks-section").hidden = !studio;
    $("recent-section").hidden = studio;
    $("report").hidden = false;
    say("ok", studio ? "Whole studio's usage." : "Usage of client " + view.userId + ".");
    if (!studio) {
      startLive(view.userId, range);
    }
  }

  // --- live updates: server-sent events read with fetch (EventSource sends no header) ----

  function setLive(state, text) {
    $("live").dataset.state = state;
    $("live").textContent = "Live updates: " + text;
  }

  function stopLive() {
    if (live) {
      live.abort();
      live = null;
    }
    setLive("off", "off");
  }

  function startLive(userId, range) {
    const controller = new AbortController();
    live = controller;
    let lastId = null;
    let backoff = 1000;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

    async function onUsage(data) {
      if (controller.signal.aborted) {
        return;
      }
      // The stream carries the all-time usage; a range is read again instead.
      const usage = range ? await getJson("/" + userId + "/session-usage" + range) : JSON.parse(data);
      const recent = await getJson("/" + userId + "/recent");
      if (controller.signal.aborted) {
        return;
      }
      showUsage(usage);
      fillRecent(recent);
      $("report").dataset.updated = new Date().toISOString();
    }

    async function readOnce() {
      const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
      if (lastId) {
        headers["Last-Event-ID"] = lastId;
      }
      const response = await fetch(API + "/" + userId + "/session-usage/events", {
        headers, cache: "no-store", credentials: "omit", signal: controller.signal,
      });
      if (!response.ok) {
        throw new Refused(response.status, await detailOf(response));
      }
      setLive("on", "on");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          return;
        }
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { type: "message", data: [] };
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon === 0) {
              continue; // a comment: keeps the connection open
            }
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event.type = text;
            else if (field === "data") event.data.push(text);
            else if (field === "id") lastId = text;
            else if (field === "retry" && /^\d+$/.test(text)) backoff = Number(text);
          }
          if (event.type === "usage" && event.data.length) {
            await onUsage(event.data.join("\n"));
            backoff = 1000;
          }
        }
      }
    }

    (async () => {
      while (!controller.signal.aborted) {
        try {
          await readOnce();
        } catch (error) {
          if (controller.signal.aborted) {
            return;
          }
          if (error instanceof Refused && (error.status === 401 || error.status === 403)) {
            setLive("off", "stopped");
            clearData();
            say("denied", refusalText(error));
            return;
          }
        }
        if (controller.signal.aborted) {
          return;
        }
        setLive("waiting", "reconnecting in " + Math.round(backoff / 1000) + " s");
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    })();
  }

  // --- the page -------------------------------------------------------------------------

  function start() {
    SVG_NS = $("distribution").namespaceURI;
    token = takeToken();
    if (!token) {
      say("signed-out", "Sign in: no token");
      return;
    }
    claims = claimsOf(token);
    const roles = rolesOf(claims);
    const subject = claims.sub == null ? "" : String(claims.sub);
    const staff = roles.includes("staff") || roles.includes("service");
    const trainer = roles.includes("trainer");
    const who = $("who");
    who.dataset.role = staff ? "staff" : trainer ? "trainer" : roles.includes("client") ? "client" : "";
    who.dataset.subject = subject;
    who.textContent = "Signed in as " + (roles.join(", ") || "no role") + (subject ? " " + subject : "");

    $("controls").hidden = false;
    $("client-field").hidden = !(staff || trainer);
    $("show-studio").hidden = !staff;
    if ((staff || trainer) && linkedClient) {
      view = { kind: "client", userId: linkedClient };
      $("client-id").value = linkedClient;
    } else if (staff) {
      view = { kind: "studio" };
    } else if (!trainer && /^\d+$/.test(subject)) {
      view = { kind: "client", userId: subject };
    }
    $("controls").addEventListener("submit", (event) => {
      event.preventDefault();
      if (staff || trainer) {
        const id = $("client-id").value.trim();
        if (/^\d+$/.test(id) && Number(id) > 0) {
          view = { kind: "client", userId: id };
        } else if (id) {
          say("error", "A client id is a whole number above 0.");
          return;
        }
      }
      load();
    });
    $("show-studio").addEventListener("click", () => {
      $("client-id").value = "";
      view = { kind: "studio" };
      load();
    });
    load();
  }

  // A page left for another ends its stream: a browser keeps only a few connections per
  // server, and a stream held by a page no longer shown would take one of them.
  window.addEventListener("pagehide", stopLive);

  // A new sign-in link opened in the same tab changes only the fragment: start afresh.
  window.addEventListener("hashchange", () => {
    if (location.hash.includes("token=")) {
      location.reload();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

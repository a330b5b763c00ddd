// The dashboard: reads the caller's JWT, asks the report APIs, draws tables and ECharts charts.
// Every figure comes from an API answer; the page computes only sums of what it was given.
(function () {
  "use strict";

  var TOKEN_KEY = "fangpin.dashboard.token";
  var ROLE_ZH = {
    village_officer: "村级",
    township_officer: "乡镇",
    county_officer: "县级",
    department_officer: "部门",
    admin: "管理员"
  };
  var KIND_ZH = {
    identification: "15天认定",
    publicity_min: "村内公示",
    helper_assignment: "明确帮扶责任人",
    assistance_plan: "一户一策",
    monthly_visit: "每月走访"
  };
  var DEPARTMENT_ZH = {
    medical_insurance: "医保局",
    health: "卫健委",
    civil_affairs: "民政局",
    education: "教育局",
    housing: "住建局",
    disability: "残联",
    human_resources: "人社局",
    emergency: "应急管理局",
    traffic_police: "交警队",
    public_security: "公安局",
    water: "水利局",
    agriculture: "农业农村局",
    market_regulation: "市场监管局",
    natural_resources: "自然资源局"
  };
  var LEVEL_ZH = { village: "村级", township: "乡镇", county: "县级" };
  var OVERDUE_SHOWN = 20;
  var COLORS = ["#b22a2a", "#d46b08", "#1677ff", "#389e0d", "#722ed1", "#13a8a8", "#c41d7f", "#7c8c9c", "#faad14"];

  var state = { token: null, claims: null, screening: "", charts: [] };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "className") { node.className = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function showError(message) {
    var line = el("div", { "data-error": "1" }, message);
    $("errors").appendChild(line);
  }

  function decodeClaims(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) { part += "="; }
      var json = decodeURIComponent(Array.prototype.map.call(atob(part), function (c) {
        return "%" + ("00" + c.charCodeAt(0).toString(16)).slice(-2);
      }).join(""));
      return JSON.parse(json);
    } catch (err) {
      return null;
    }
  }

  // The token may arrive in the URL fragment (never sent to a server); it is moved into this
  // tab's session storage and the fragment cleared, so it does not linger in the address bar.
  function takeToken() {
    var match = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash || "");
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function api(base, path) {
    return fetch(base + path, { headers: { Authorization: "Bearer " + state.token } }).then(function (res) {
      if (res.ok) { return res; }
      return res.json().catch(function () { return {}; }).then(function (problem) {
        var detail = problem.detail_zh || problem.detail || problem.title || res.statusText;
        var error = new Error(path + "：" + detail + "（HTTP " + res.status + "）");
        error.status = res.status;
        throw error;
      });
    });
  }

  function json(base, path) {
    return api(base, path).then(function (res) { return res.json(); });
  }

  function pct(share) {
    return share === null || share === undefined ? "—" : (share * 100).toFixed(1) + "%";
  }

  function chart(id, option) {
    var box = $(id);
    if (!window.echarts) {
      box.textContent = "图表库未安装（运行 make dashboard-assets）";
      box.className += " empty";
      return;
    }
    var instance = window.echarts.init(box, null, { renderer: "canvas" });
    option.animation = false;
    option.color = COLORS;
    option.textStyle = { fontFamily: "WenQuanYi Micro Hei, Microsoft YaHei, sans-serif" };
    instance.setOption(option);
    box.setAttribute("data-chart", "ready");
    state.charts.push(instance);
  }

  // ---------------------------------------------------------------- 表七/1

  function renderTable(table) {
    $("table-title").textContent = table.title + "（表七/1）";
    var grid = $("table71");
    grid.innerHTML = "";
    var head = el("thead");
    var r1 = el("tr"), r2 = el("tr"), r3 = el("tr");
    r1.appendChild(el("th", { rowspan: "3" }, "乡镇"));
    var groups = [];
    table.columns.forEach(function (c) {
      var last = groups[groups.length - 1];
      if (last && last.group === c.group) { last.cols.push(c); } else { groups.push({ group: c.group, cols: [c] }); }
    });
    groups.forEach(function (g) {
      if (!g.cols[0].unit) {
        r1.appendChild(el("th", { rowspan: "3" }, g.group));
        return;
      }
      r1.appendChild(el("th", { colspan: String(g.cols.length) }, g.group));
      var titles = [];
      g.cols.forEach(function (c) {
        var last = titles[titles.length - 1];
        if (last && last.title === c.title) { last.n += 1; } else { titles.push({ title: c.title, n: 1 }); }
        r3.appendChild(el("th", {}, c.unit));
      });
      titles.forEach(function (t) { r2.appendChild(el("th", { colspan: String(t.n) }, t.title)); });
    });
    head.appendChild(r1); head.appendChild(r2); head.appendChild(r3);
    grid.appendChild(head);
    var body = el("tbody");
    table.rows.concat([table.total]).forEach(function (row) {
      var isTotal = row === table.total;
      var key = isTotal ? "total" : (row.township_code || "unplaced");
      var tr = el("tr", { className: isTotal ? "total" : "", "data-row": key });
      tr.appendChild(el("td", {}, row.name + (row.historical ? "（原）" : "")));
      table.columns.forEach(function (c) {
        tr.appendChild(el("td", { "data-cell": key + ":" + c.key }, row[c.key]));
      });
      body.appendChild(tr);
    });
    grid.appendChild(body);
    $("table-notes").textContent = "说明：" + table.notes.join("；") + "。区划版本 " + table.region_version + "。";

    var t = table.total;
    $("board").querySelector('[data-kpi="escaped_households"]').textContent = t.escaped_households;
    $("board").querySelector('[data-kpi="escaped_persons"]').textContent = t.escaped_persons + " 人";
    $("board").querySelector('[data-kpi="monitored_households"]').textContent =
      t.unstable_households + t.marginal_households + t.sudden_households;
    $("board").querySelector('[data-kpi="monitored_persons"]').textContent =
      (t.unstable_persons + t.marginal_persons + t.sudden_persons) + " 人";

    chart("chart-townships", {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 50, right: 16, top: 36, bottom: 60 },
      xAxis: { type: "category", data: table.rows.map(function (r) { return r.name; }), axisLabel: { rotate: 35 } },
      yAxis: { type: "value" },
      series: [
        { name: "脱贫不稳定户", type: "bar", stack: "m", data: table.rows.map(function (r) { return r.unstable_households; }) },
        { name: "边缘户", type: "bar", stack: "m", data: table.rows.map(function (r) { return r.marginal_households; }) },
        { name: "突发严重困难户", type: "bar", stack: "m", data: table.rows.map(function (r) { return r.sudden_households; }) }
      ]
    });
  }

  function download(kind) {
    var path = "/v1/reports/township-distribution." + kind;
    api(state.screening, path).then(function (res) { return res.blob(); }).then(function (blob) {
      var link = el("a", { href: URL.createObjectURL(blob), download: "脱贫户分布情况表." + kind });
      document.body.appendChild(link);
      link.click();
      link.remove();
    }).catch(function (err) { showError(err.message); });
  }

  // ---------------------------------------------------------------- pipeline

  function renderPipeline(p) {
    $("board").querySelector('[data-kpi="cases"]').textContent = p.cases;
    chart("chart-stages", {
      tooltip: { trigger: "axis" },
      grid: { left: 110, right: 30, top: 10, bottom: 20 },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: p.by_stage.map(function (s) { return s.label_zh; }) },
      series: [{ type: "bar", data: p.by_stage.map(function (s) { return s.count; }), label: { show: true, position: "right" } }]
    });
    chart("chart-channels", {
      tooltip: { trigger: "item" },
      legend: { bottom: 0 },
      series: [{
        type: "pie",
        radius: ["35%", "65%"],
        label: { formatter: "{b}\n{c} 件" },
        data: p.by_first_channel.map(function (c) { return { name: c.label_zh, value: c.count }; })
      }]
    });
    var top = p.by_risk_factor.slice(0, 10);
    chart("chart-factors", {
      tooltip: { trigger: "axis" },
      grid: { left: 150, right: 30, top: 10, bottom: 20 },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: top.map(function (f) { return f.key + " " + f.label_zh; }) },
      series: [{ type: "bar", data: top.map(function (f) { return f.count; }), label: { show: true, position: "right" } }]
    });
  }

  // ---------------------------------------------------------------- SLA

  function renderSla(report) {
    var metrics = report.metrics;
    chart("chart-sla", {
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
      legend: { top: 0 },
      grid: { left: 50, right: 20, top: 36, bottom: 30 },
      xAxis: { type: "category", data: report.months },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: metrics.map(function (m) {
        return {
          name: m.title_zh,
          type: "line",
          connectNulls: false,
          data: report.months.map(function (month) {
            var cell = report.totals.filter(function (t) { return t.month === month && t.metric === m.key; })[0];
            return cell && cell.share !== null ? +(cell.share * 100).toFixed(1) : null;
          })
        };
      })
    });

    // Per township over the whole window: on time / decided, as the month-end report states it.
    var sums = {};
    function add(key, cell) {
      var s = sums[key] || (sums[key] = { on_time: 0, late: 0, pending: 0 });
      s.on_time += cell.on_time; s.late += cell.late; s.pending += cell.pending;
    }
    var names = {};
    report.townships.forEach(function (c) {
      var code = c.township_code || "unplaced";
      names[code] = c.township_name;
      add(code + ":" + c.metric, c);
    });
    report.totals.forEach(function (c) { add("total:" + c.metric, c); });
    var grid = $("sla-table");
    grid.innerHTML = "";
    var head = el("tr");
    head.appendChild(el("th", {}, "乡镇（" + report.months[0] + " 至 " + report.months[report.months.length - 1] + "）"));
    metrics.forEach(function (m) { head.appendChild(el("th", { title: m.rule }, m.title_zh)); });
    grid.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    Object.keys(names).sort().concat(["total"]).forEach(function (code) {
      var tr = el("tr", { className: code === "total" ? "total" : "" });
      tr.appendChild(el("td", {}, code === "total" ? "合计" : names[code]));
      metrics.forEach(function (m) {
        var s = sums[code + ":" + m.key];
        var text = "—";
        if (s) {
          var decided = s.on_time + s.late;
          text = (decided ? pct(s.on_time / decided) : "—") + "（" + s.on_time + "/" + decided + "，待到期 " + s.pending + "）";
        }
        tr.appendChild(el("td", { "data-sla": code + ":" + m.key }, text));
      });
      body.appendChild(tr);
    });
    grid.appendChild(body);

    $("board").querySelector('[data-kpi="overdue_total"]').textContent = report.overdue_total;
    var shown = report.overdue.slice(0, OVERDUE_SHOWN);
    $("overdue-count").textContent = "共 " + report.overdue_total + " 项" +
      (shown.length < report.overdue_total ? "，显示超期最久的 " + shown.length + " 项" : "");
    var list = $("overdue-table");
    list.innerHTML = "";
    var h = el("tr");
    ["乡镇", "村（社区）代码", "户主", "时限", "到期日", "超期天数", "当前环节", "督办层级"].forEach(function (t) { h.appendChild(el("th", {}, t)); });
    list.appendChild(el("thead")).appendChild(h);
    var tb = el("tbody");
    if (!report.overdue.length) {
      var none = el("tr");
      none.appendChild(el("td", { colspan: "8", className: "empty" }, "没有超期未办的时限"));
      tb.appendChild(none);
    }
    shown.forEach(function (o) {
      var tr = el("tr", { "data-overdue": o.case_id });
      [o.township_name, o.village_code, o.head_name || "—", KIND_ZH[o.kind] || o.kind, o.due, o.days_overdue,
        o.stage_label_zh, LEVEL_ZH[o.escalation_level] || o.escalation_level || "—"]
        .forEach(function (v) { tr.appendChild(el("td", {}, v)); });
      tb.appendChild(tr);
    });
    list.appendChild(tb);
  }

  // ---------------------------------------------------------------- area alerts

  function renderAlerts(report) {
    $("board").querySelector('[data-kpi="area_alerts"]').textContent = report.items.length;
    var grid = $("alerts-table");
    grid.innerHTML = "";
    var h = el("tr");
    ["周（起）", "乡镇", "原因", "信号数", "涉及户数", "基线均值", "阈值"].forEach(function (t) { h.appendChild(el("th", {}, t)); });
    grid.appendChild(el("thead")).appendChild(h);
    var body = el("tbody");
    if (!report.items.length) {
      var none = el("tr");
      none.appendChild(el("td", { colspan: "7", className: "empty" }, "近期无规模性返贫预警"));
      body.appendChild(none);
    }
    report.items.forEach(function (a) {
      var tr = el("tr", { "data-alert": a.township_code + ":" + a.cause + ":" + a.week_start });
      [a.week_start, a.township_name, a.cause_zh, a.signal_count, a.household_count, a.baseline_mean, a.threshold]
        .forEach(function (v, i) {
          var td = el("td", {}, v);
          if (i === 2) { td.innerHTML = ""; td.appendChild(el("span", { className: "tag" }, v)); }
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
    grid.appendChild(body);

    var weeks = [];
    var causes = {};
    report.weeks.forEach(function (w) {
      if (weeks.indexOf(w.week_start) < 0) { weeks.push(w.week_start); }
      var c = causes[w.cause] || (causes[w.cause] = { name: w.cause_zh, total: 0, byWeek: {} });
      c.byWeek[w.week_start] = w.signals;
      c.total += w.signals;
    });
    var shown = Object.keys(causes).filter(function (k) { return causes[k].total > 0; });
    chart("chart-causes", {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 50 },
      xAxis: { type: "category", data: weeks, axisLabel: { rotate: 35 } },
      yAxis: { type: "value", minInterval: 1 },
      series: shown.map(function (k) {
        return { name: causes[k].name, type: "bar", stack: "c", data: weeks.map(function (w) { return causes[k].byWeek[w] || 0; }) };
      })
    });
  }

  // ---------------------------------------------------------------- departments

  function renderDepartments(scores) {
    var grid = $("departments-table");
    grid.innerHTML = "";
    var h = el("tr");
    ["部门", "推送预警", "其中纳入监测", "纳入率"].forEach(function (t) { h.appendChild(el("th", {}, t)); });
    grid.appendChild(el("thead")).appendChild(h);
    var body = el("tbody");
    if (!scores.length) {
      var none = el("tr");
      none.appendChild(el("td", { colspan: "4", className: "empty" }, "暂无部门预警"));
      body.appendChild(none);
    }
    scores.forEach(function (d) {
      var tr = el("tr", { "data-department": d.department });
      [DEPARTMENT_ZH[d.department] || d.department, d.alerts, d.included, pct(d.share_included)]
        .forEach(function (v) { tr.appendChild(el("td", {}, v)); });
      body.appendChild(tr);
    });
    grid.appendChild(body);
  }

  // ---------------------------------------------------------------- start

  function section(promise, render) {
    return promise.then(render).catch(function (err) { showError(err.message); });
  }

  function start() {
    var claims = state.claims;
    $("login").className += " hidden";
    $("board").className = $("board").className.replace(/\bhidden\b/, "");
    $("scope-label").textContent = "辖区 " + claims.region;
    var who = $("who");
    who.textContent = (ROLE_ZH[claims.role] || claims.role) + " · " + claims.sub;
    var out = el("button", { type: "button" }, "退出");
    out.addEventListener("click", function () { sessionStorage.removeItem(TOKEN_KEY); window.location.reload(); });
    who.appendChild(out);

    var work;
    if (claims.role === "department_officer") {
      // A department sees only what became of its own alerts.
      work = [section(json(state.screening, "/v1/reports/departments/" + encodeURIComponent(claims.department || "")),
        function (d) { renderDepartments([d]); })];
    } else {
      work = [
        section(json(state.screening, "/v1/reports/township-distribution"), renderTable),
        section(json("", "/v1/reports/pipeline"), renderPipeline),
        section(json("", "/v1/reports/sla?months=6"), renderSla),
        section(json(state.screening, "/v1/reports/area-alerts?weeks=12"), renderAlerts),
        section(json(state.screening, "/v1/reports/departments"), function (r) { renderDepartments(r.departments); })
      ];
    }
    Promise.all(work).then(function () {
      document.body.setAttribute("data-charts", String(state.charts.length));
      document.body.setAttribute("data-ready", "1");
    });
  }

  function boot() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-download]"), function (button) {
      button.addEventListener("click", function () { download(button.getAttribute("data-download")); });
    });
    window.addEventListener("resize", function () { state.charts.forEach(function (c) { c.resize(); }); });
    $("login-form").addEventListener("submit", function (event) {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      window.location.reload();
    });
    state.token = takeToken();
    state.claims = state.token ? decodeClaims(state.token) : null;
    if (!state.claims) {
      $("login").className = $("login").className.replace(/\bhidden\b/, "");
      document.body.setAttribute("data-ready", "login");
      return;
    }
    fetch("config.json").then(function (res) { return res.json(); }).then(function (config) {
      state.screening = config.screening_url;
      start();
    }).catch(function (err) {
      showError("无法读取看板配置：" + err.message);
      document.body.setAttribute("data-ready", "1");
    });
  }

  boot();
})();

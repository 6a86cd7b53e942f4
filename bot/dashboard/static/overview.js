// 态势: draws the overview's charts from the JSON in the page, then polls /dashboard/api/overview every
// few seconds and redraws, so a wall screen follows what happens without anyone touching it.
(function () {
  "use strict";
  var POLL_MS = 5000;
  var COLOURS = ["#3fa7ff", "#3ccf91", "#f2a33a", "#ff5a5f", "#b38cff", "#4dd4e6", "#ffd166",
                 "#ef8ac0", "#8bd450", "#f78c6b", "#6c8cff", "#c0c0c0", "#e0a96d", "#7fd1b9"];
  var text = "#e8eef6", grid = "rgba(147,167,192,0.18)";
  Chart.defaults.color = text;
  Chart.defaults.borderColor = grid;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif';

  // Grid names beside the heat view's circles (no map tiles: the grid centres are the map).
  var gridNames = { id: "gridNames", afterDatasetsDraw: function (chart) {
    var ctx = chart.ctx, meta = chart.getDatasetMeta(0);
    ctx.save(); ctx.fillStyle = text; ctx.font = "12px " + Chart.defaults.font.family; ctx.textBaseline = "middle";
    meta.data.forEach(function (element, i) {
      var point = chart.data.datasets[0].data[i];
      ctx.fillText(point.name.replace(/^.*社区/, "") + " " + point.open + "/" + point.overdue,
                   element.x + element.options.radius + 4, element.y);
    });
    ctx.restore();
  } };

  var charts = {};
  function make(id, config) { charts[id] = new Chart(document.getElementById(id), config); }

  function dailyDatasets(data) {
    return data.daily.series.map(function (s, i) {
      return { label: s.label, data: s.data, backgroundColor: COLOURS[i % COLOURS.length], stack: "c" };
    });
  }
  function heatPoints(data) {
    return data.heat.map(function (g) {
      return { x: g.lng, y: g.lat, r: 6 + Math.sqrt(g.open) * 5, name: g.name, open: g.open, overdue: g.overdue };
    });
  }
  function heatColours(data) {
    return data.heat.map(function (g) {
      return g.overdue > 0 ? "rgba(255,90,95,0.75)" : g.open > 0 ? "rgba(242,163,58,0.7)" : "rgba(60,207,145,0.55)";
    });
  }
  function monthSeries(data, key) { return data.months.map(function (m) { return m[key]; }); }

  function draw(data) {
    make("chart-daily", { type: "bar", data: { labels: data.daily.days, datasets: dailyDatasets(data) },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
                 plugins: { legend: { position: "bottom" } } } });
    make("chart-rates", { type: "line", data: { labels: data.months.map(function (m) { return m.month; }), datasets: [
        { label: "响应率", data: monthSeries(data, "response"), borderColor: COLOURS[0], backgroundColor: COLOURS[0], spanGaps: true },
        { label: "解决率", data: monthSeries(data, "resolution"), borderColor: COLOURS[1], backgroundColor: COLOURS[1], spanGaps: true },
        { label: "满意率", data: monthSeries(data, "satisfaction"), borderColor: COLOURS[2], backgroundColor: COLOURS[2], spanGaps: true }] },
      options: { scales: { y: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } } },
                 plugins: { legend: { position: "bottom" } } } });
    make("chart-heat", { type: "bubble", data: { datasets: [{ label: "网格", data: heatPoints(data),
        backgroundColor: heatColours(data), borderColor: "rgba(232,238,246,0.6)" }] },
      plugins: [gridNames],
      options: { layout: { padding: 24 }, scales: { x: { grace: "8%", title: { display: true, text: "经度" } },
                                                   y: { grace: "8%", title: { display: true, text: "纬度" } } },
                 plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (c) {
                   var p = c.raw; return p.name + "：办理中 " + p.open + "，超时 " + p.overdue; } } } } } });
    make("chart-accept", { type: "bar", data: { labels: data.durations.labels,
        datasets: [{ label: "工单数", data: data.durations.accept, backgroundColor: COLOURS[0] }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
    make("chart-resolve", { type: "bar", data: { labels: data.durations.labels,
        datasets: [{ label: "工单数", data: data.durations.resolve, backgroundColor: COLOURS[1] }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
  }

  function cell(value, suffix) { return value === null || value === undefined ? "—" : value + (suffix || ""); }
  function update(data) {
    ["today", "week", "open", "overdue", "urgent"].forEach(function (k) {
      document.getElementById("n-" + k).textContent = data.counts[k];
    });
    document.getElementById("updated").textContent = "更新于 " + data.updated;
    var d = charts["chart-daily"]; d.data.labels = data.daily.days; d.data.datasets = dailyDatasets(data); d.update();
    var r = charts["chart-rates"];
    r.data.labels = data.months.map(function (m) { return m.month; });
    ["response", "resolution", "satisfaction"].forEach(function (k, i) { r.data.datasets[i].data = monthSeries(data, k); });
    r.update();
    var h = charts["chart-heat"]; h.data.datasets[0].data = heatPoints(data); h.data.datasets[0].backgroundColor = heatColours(data); h.update();
    charts["chart-accept"].data.datasets[0].data = data.durations.accept; charts["chart-accept"].update();
    charts["chart-resolve"].data.datasets[0].data = data.durations.resolve; charts["chart-resolve"].update();
    var body = document.getElementById("ranking");
    body.textContent = "";
    if (!data.ranking.length) {
      var empty = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = 8; td.textContent = data.ranking_ready ? "没有下级单位" : "正在计算…";
      empty.appendChild(td); body.appendChild(empty);
    }
    data.ranking.forEach(function (row) {
      var tr = document.createElement("tr");
      [cell(row.rank), row.name, cell(row.composite), cell(row.response, "%"), cell(row.resolution, "%"),
       cell(row.satisfaction, "%"), row.received, row.overdue].forEach(function (v) {
        var td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function poll() {
    fetch("/dashboard/api/overview", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(update)
      .catch(function () { document.getElementById("updated").textContent = "连接中断，正在重试…"; })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  draw(JSON.parse(document.getElementById("overview-data").textContent));
  setTimeout(poll, POLL_MS);
})();

// fpgaops dashboard: draws the fleet map, keeps the page live through
// server-sent events, and sends an approval with the admin token the
// person types. No dependencies, no build step.
(function () {
  'use strict';

  var colours = {
    c: '#2e9e5b', g: '#2f7ed8', h: '#d99a16', f: '#d64545', u: '#8e44ad', k: '#9aa0a6'
  };

  // drawMap draws every card of the fleet: a column of cells per node,
  // nodes in rows, in the order of the node table's pages.
  function drawMap() {
    var canvas = document.getElementById('fleet-map');
    if (!canvas) { return; }
    var data = canvas.getAttribute('data-map') || '';
    var nodes = data === '' ? [] : data.split('|');
    var most = 1;
    for (var i = 0; i < nodes.length; i++) { if (nodes[i].length > most) { most = nodes[i].length; } }
    var cell = nodes.length <= 100 ? 14 : nodes.length <= 2000 ? 7 : 4;
    var gap = cell >= 7 ? 2 : 1;
    var width = canvas.parentNode.clientWidth || 800;
    var perRow = Math.max(1, Math.floor(width / (cell + gap)));
    var rowHeight = most * (cell + gap) + gap * 2;
    var rows = Math.ceil(nodes.length / perRow);
    var ratio = window.devicePixelRatio || 1;
    canvas.style.height = Math.max(rowHeight, rows * rowHeight) + 'px';
    canvas.width = Math.floor(width * ratio);
    canvas.height = Math.floor(Math.max(rowHeight, rows * rowHeight) * ratio);
    var ctx = canvas.getContext('2d');
    ctx.scale(ratio, ratio);
    for (var n = 0; n < nodes.length; n++) {
      var x = (n % perRow) * (cell + gap);
      var y = Math.floor(n / perRow) * rowHeight;
      var cards = nodes[n];
      for (var c = 0; c < cards.length; c++) {
        ctx.fillStyle = colours[cards.charAt(c)] || colours.k;
        ctx.fillRect(x, y + c * (cell + gap), cell, cell);
      }
    }
    canvas.onclick = function (ev) {
      var r = canvas.getBoundingClientRect();
      var i = Math.floor((ev.clientY - r.top) / rowHeight) * perRow + Math.floor((ev.clientX - r.left) / (cell + gap));
      if (i < 0 || i >= nodes.length) { return; }
      var size = parseInt(canvas.getAttribute('data-page-size'), 10) || 200;
      location.href = '/?page=' + (Math.floor(i / size) + 1) + '#at-' + i;
    };
    canvas.title = nodes.length + ' node(s); click a node to list it';
  }

  // mark highlights the row the map's click asked for.
  function mark() {
    var m = /^#at-(\d+)$/.exec(location.hash);
    if (!m) { return; }
    var row = document.querySelector('.node[data-index="' + m[1] + '"]');
    if (row) { row.className += ' highlight'; row.scrollIntoView({ block: 'center' }); }
  }

  function bindApprovals() {
    var forms = document.querySelectorAll('form.approve');
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener('submit', approve);
    }
  }

  // approve posts to the controller's admin API with the token typed in;
  // the token goes nowhere else and is not kept.
  function approve(ev) {
    ev.preventDefault();
    var form = ev.target;
    var out = form.querySelector('.result');
    var token = form.elements.token.value;
    form.elements.token.value = '';
    out.textContent = 'approving…';
    fetch('/runs/' + form.getAttribute('data-run') + '/approve', {
      method: 'POST', headers: { 'Authorization': 'Bearer ' + token }
    }).then(function (r) {
      return r.text().then(function (body) {
        out.textContent = r.ok ? 'approved: the controller makes the changes now' : r.status + ' ' + body.trim();
        if (r.ok) { refresh(); }
      });
    }, function (err) { out.textContent = 'not sent: ' + err; });
  }

  // init draws the page's script-made parts; the page is ready once the
  // frame after them is painted.
  function init() {
    drawMap();
    mark();
    bindApprovals();
    requestAnimationFrame(function () {
      setTimeout(function () {
        if (window.performance && performance.mark) { performance.mark('fpgaops-ready'); }
        document.documentElement.setAttribute('data-ready', '1');
      }, 0);
    });
  }

  // refresh fetches this page's content again and puts it in place,
  // unless a person is typing in it.
  var busy = false;
  function refresh() {
    var main = document.getElementById('main');
    if (busy || !main) { return; }
    if (document.activeElement && main.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') { return; }
    busy = true;
    fetch(location.pathname + location.search, { headers: { 'X-Fpgaops-Partial': '1' } }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      busy = false;
      if (html !== null) { main.innerHTML = html; init(); }
    }, function () { busy = false; });
  }

  var last = 0, timer = null;
  function update() {
    var wait = Math.max(0, 1000 - (Date.now() - last));
    if (timer) { return; }
    timer = setTimeout(function () { timer = null; last = Date.now(); refresh(); }, wait);
  }

  function listen() {
    var live = document.getElementById('live');
    if (!window.EventSource) { setInterval(refresh, 5000); return; }
    var first = true;
    var es = new EventSource('/events');
    es.addEventListener('update', function () {
      if (first) { first = false; return; } // the page is that version
      update();
    });
    es.onopen = function () { if (live) { live.className = 'live on'; } };
    es.onerror = function () { if (live) { live.className = 'live'; } };
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { init(); listen(); });
  } else { init(); listen(); }
  window.addEventListener('resize', drawMap);
}());

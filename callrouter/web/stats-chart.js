/* A grouped bar chart as inline SVG: slots along x, one bar per series in each slot.
 *
 * Small on purpose (docs/decisions.md): the page needs two bar charts, and an SVG of our own
 * has nothing to ship, renders the same in every browser, and is easy to test (each bar is a
 * <rect class="bar"> carrying its slot, series and value).
 */

const SVG = 'http://www.w3.org/2000/svg';
const HEIGHT = 220;
const PAD = {top: 14, right: 8, bottom: 26, left: 34};

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The smallest of 1, 2, 5 × 10^n at least `max` / `steps` per step: gridlines on round numbers. */
function niceStep(max, steps) {
  const raw = Math.max(max / steps, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/**
 * Draw into `box` (emptied first):
 *   labels: one x label per slot; titles: a longer name per slot (tooltips)
 *   series: [{key, name, className, values}] — values aligned with labels
 *   empty:  the text shown over the axes when every value is zero
 *   format: number → text for values and the y axis
 */
export function barChart(box, {labels, titles, series, empty, format, ariaLabel}) {
  box.replaceChildren();
  const width = Math.max(box.clientWidth, 240);
  const svg = el('svg', {
    width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': ariaLabel,
  });
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const max = Math.max(0, ...series.flatMap((s) => s.values));
  const step = niceStep(max, 4);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  for (let v = 0; v <= top; v += step) {
    svg.append(el('line', {class: 'grid', x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v)}));
    svg.append(el('text', {class: 'axis-label', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end'}, format(v)));
  }

  const slotW = plotW / labels.length;
  const groupW = Math.min(slotW * 0.78, 28 * series.length);
  const barW = groupW / series.length;
  // Thin slots show every other x label, so labels never run into each other.
  const every = slotW < 22 ? 2 : 1;
  labels.forEach((label, i) => {
    const x0 = PAD.left + i * slotW + (slotW - groupW) / 2;
    series.forEach((s, j) => {
      const value = s.values[i];
      if (!value) return;
      const rect = el('rect', {
        class: `bar ${s.className}`,
        x: x0 + j * barW + 0.5,
        y: y(value),
        width: Math.max(barW - 1, 1),
        height: Math.max(PAD.top + plotH - y(value), 1),
        rx: Math.min(3, barW / 4),
        'data-slot': i,
        'data-series': s.key,
        'data-value': value,
      });
      rect.append(el('title', {}, `${titles[i]} · ${s.name}: ${format(value)}`));
      svg.append(rect);
    });
    if (i % every === 0) {
      svg.append(el('text', {
        class: 'axis-label', x: PAD.left + (i + 0.5) * slotW, y: HEIGHT - 8, 'text-anchor': 'middle',
      }, label));
    }
  });
  svg.append(el('line', {class: 'axis', x1: PAD.left, x2: width - PAD.right, y1: y(0), y2: y(0)}));
  if (max === 0) {
    svg.append(el('text', {
      class: 'empty-label', x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, 'text-anchor': 'middle',
    }, empty));
  }
  box.append(svg);
}

//! `report/table5.md` and the learning curves (SVG, one file per dataset, a panel per
//! configuration, like the paper's Figure 7).

use super::run::RunSummary;
use sfr2l_core::agent::rolling_mean;
use std::fmt::Write;

/// The paper's Table 5 "Sim." column: label, then S1..S5.
pub const PAPER_SIM: [(&str, [f64; 5]); 10] = [
    ("Call", [1.03, 2.71, 1.75, 2.05, 1.31]),
    ("Thread", [2.21, 1.04, 1.18, 1.16, 1.02]),
    ("Thread&Call", [2.26, 3.45, 1.84, 2.07, 1.31]),
    ("Thread-Call", [2.24, 3.39, 1.96, 2.14, 1.32]),
    ("Call-Thread", [2.22, 3.44, 1.79, 2.11, 1.33]),
    ("Call*5", [1.01, 2.96, 1.77, 2.05, 1.33]),
    ("Thread*5", [2.23, 1.15, 1.13, 1.18, 1.01]),
    ("Thread&Call*5", [2.26, 4.12, 1.84, 2.11, 1.32]),
    ("Thread-Call*5", [2.22, 3.53, 1.94, 2.09, 1.34]),
    ("Call-Thread*5", [2.28, 3.50, 1.99, 2.11, 1.33]),
];

fn stats(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let m = xs.iter().sum::<f64>() / n;
    let sd = if xs.len() > 1 { (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (m, sd)
}

/// `runs`: all summaries (any seeds); `datasets`: e.g. ["s1", ..]; `command`: what made it.
pub fn table5(runs: &[RunSummary], datasets: &[String], command: &str, note: &str) -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "# Table 5 (Sim.): reward ratio of the learned agents against random, and against the optimum\n");
    let _ =
        writeln!(s, "Made by `{command}` at commit `{}`.", runs.first().map(|r| r.git_commit.as_str()).unwrap_or("?"));
    let _ = writeln!(s, "{note}\n");
    let cell = |label: &str, ds: &str, f: &dyn Fn(&RunSummary) -> f64| -> Option<(f64, f64, usize)> {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.label == label && r.profiles.first().map(String::as_str) == Some(ds))
            .map(f)
            .collect();
        (!v.is_empty()).then(|| {
            let (m, sd) = stats(&v);
            (m, sd, v.len())
        })
    };
    let header = |s: &mut String, title: &str| {
        let _ = writeln!(s, "\n## {title}\n");
        let _ = write!(s, "| configuration |");
        for d in datasets {
            let _ = write!(s, " {} |", d.to_uppercase());
        }
        let _ = write!(s, "\n|---|");
        for _ in datasets {
            let _ = write!(s, "---|");
        }
        let _ = writeln!(s);
    };
    header(
        &mut s,
        "Sim.: max of the 25-epoch rolling mean of RL/random, mean ± sd over seeds (paper's Sim. in brackets)",
    );
    for (label, paper) in PAPER_SIM {
        let _ = write!(s, "| {label} |");
        for d in datasets {
            let idx = d.trim_start_matches('s').parse::<usize>().ok().and_then(|i| i.checked_sub(1));
            let p = idx.and_then(|i| paper.get(i)).map(|v| format!(" ({v:.2})")).unwrap_or_default();
            match cell(label, d, &|r| r.sim_ratio) {
                Some((m, sd, _)) => {
                    let _ = write!(s, " {m:.2} ± {sd:.2}{p} |");
                }
                None => {
                    let _ = write!(s, " not run{p} |");
                }
            }
        }
        let _ = writeln!(s);
    }
    for (title, f) in [
        (
            "Optimum/random: exhaustive best action per state on the simulator (policy-independent)",
            &(|r: &RunSummary| r.optimum_ratio) as &dyn Fn(&RunSummary) -> f64,
        ),
        ("RL/optimum: rolling mean at the Sim. window, exploration included (goal >= 0.95)", &|r: &RunSummary| {
            r.rl_over_optimum
        }),
        ("Greedy/optimum: the same agents without exploration, same window", &|r: &RunSummary| r.greedy_over_optimum),
    ] {
        header(&mut s, title);
        for (label, _) in PAPER_SIM {
            let _ = write!(s, "| {label} |");
            for d in datasets {
                match cell(label, d, f) {
                    Some((m, sd, _)) => {
                        let _ = write!(s, " {m:.3} ± {sd:.3} |");
                    }
                    None => {
                        let _ = write!(s, " - |");
                    }
                }
            }
            let _ = writeln!(s);
        }
    }
    let total: f64 = runs.iter().map(|r| r.seconds).sum();
    let _ = writeln!(s, "\n{} runs, {:.1} minutes of training in all (sum of run times).", runs.len(), total / 60.0);
    let met = runs.iter().filter(|r| r.rl_over_optimum >= 0.95).count();
    let _ = writeln!(s, "RL/optimum >= 0.95 in {met} of {} runs.", runs.len());
    s
}

/// Text for an SVG/XML text node.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One SVG with a panel per configuration: per-epoch ratio (light) and its rolling mean (dark).
pub fn curves_svg(title: &str, panels: &[(String, Vec<f64>)], window: usize) -> String {
    let (cols, pw, ph, pad) = (5usize, 240.0, 170.0, 34.0);
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (cols as f64 * pw, rows as f64 * ph + 30.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"8\" y=\"18\" font-size=\"14\">{}</text>\n",
        xml_escape(title)
    );
    for (i, (label, ratios)) in panels.iter().enumerate() {
        let (x0, y0) = ((i % cols) as f64 * pw + pad, (i / cols) as f64 * ph + 30.0 + 14.0);
        let (iw, ih) = (pw - pad - 10.0, ph - 14.0 - 30.0);
        let roll = rolling_mean(ratios, window);
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min).min(1.0);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max).max(lo + 1e-6);
        let n = ratios.len().max(2) as f64 - 1.0;
        let pt = |k: usize, v: f64| (x0 + k as f64 / n * iw, y0 + ih - (v - lo) / (hi - lo) * ih);
        let path = |v: &[f64]| {
            v.iter()
                .enumerate()
                .map(|(k, y)| {
                    let (a, b) = pt(k, *y);
                    format!("{a:.1},{b:.1}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (_, one) = pt(0, 1.0);
        let _ = writeln!(s, "<text x=\"{x0}\" y=\"{:.1}\">{}</text>", y0 - 4.0, xml_escape(label));
        let _ =
            writeln!(s, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{iw}\" height=\"{ih}\" fill=\"none\" stroke=\"#999\"/>");
        let _ = writeln!(
            s,
            "<line x1=\"{x0}\" y1=\"{one:.1}\" x2=\"{:.1}\" y2=\"{one:.1}\" stroke=\"#c33\" stroke-dasharray=\"3,3\"/>",
            x0 + iw
        );
        let _ =
            writeln!(s, "<polyline fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\" points=\"{}\"/>", path(ratios));
        let _ =
            writeln!(s, "<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"1.6\" points=\"{}\"/>", path(&roll));
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{hi:.2}</text>", x0 - 2.0, y0 + 9.0);
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{lo:.2}</text>", x0 - 2.0, y0 + ih);
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">epoch {}</text>",
            x0 + iw,
            y0 + ih + 12.0,
            ratios.len()
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn svg_has_a_panel_per_configuration() {
        let svg =
            super::curves_svg("S1", &[("Call".into(), vec![1.0, 1.5, 2.0]), ("Thread".into(), vec![1.0, 1.1, 1.2])], 2);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains(">Thread</text>") && svg.starts_with("<svg"));
        let svg = super::curves_svg("a & b", &[("Thread&Call".into(), vec![1.0, 2.0])], 2);
        assert!(svg.contains(">Thread&amp;Call</text>") && svg.contains(">a &amp; b</text>"), "{svg}");
    }
}

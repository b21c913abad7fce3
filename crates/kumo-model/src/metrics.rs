//! CloudWatch's arithmetic: a data point's statistic set, aggregation into periods, the
//! statistics a query asks for (`SampleCount`, `Average`, `Sum`, `Minimum`, `Maximum` and
//! percentiles `pNN.NN`), and metric math over the resulting series.
//!
//! AWS's rules kept here:
//! - A data point is a statistic set (sample count, sum, minimum, maximum). Raw values keep
//!   their distribution, so percentiles can be computed; a statistic set whose minimum and
//!   maximum differ has lost it, and a period holding one answers no percentile (AWS answers
//!   percentiles for statistic sets only when `SampleCount` is 1 or `Minimum == Maximum`).
//! - Percentiles use the nearest-rank method on the period's values.
//! - Metric math: `+ - * /` between series and scalars (a time stamp missing from either side
//!   is missing from the result), and `SUM`, `AVG`, `MIN`, `MAX` over an array of series (a
//!   series, point by point over the time stamps any of them has) or over one series (a
//!   scalar of all its points), with `METRICS()` the array of the request's metric queries.

use std::collections::BTreeMap;

/// The most distinct values a data point keeps for percentiles.
pub const MAX_DISTINCT: usize = 150;

/// One stored data point: a statistic set, and its values while they are few and exact.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub n: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// (value, count) pairs, sorted by value; `None` once the distribution is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<(f64, f64)>>,
}

impl Stat {
    /// One value seen `count` times.
    pub fn value(v: f64, count: f64) -> Stat {
        Stat {
            n: sat(count),
            sum: sat(v * count),
            min: v,
            max: v,
            values: Some(vec![(v, sat(count))]),
        }
    }

    /// A statistic set as PutMetricData gives it: its distribution is known only when its
    /// values are all one value.
    pub fn set(n: f64, sum: f64, min: f64, max: f64) -> Stat {
        let (n, sum) = (sat(n), sat(sum));
        let values = (min == max || n == 1.0).then(|| vec![(min, n)]);
        Stat {
            n,
            sum,
            min,
            max,
            values,
        }
    }

    pub fn merge(&mut self, o: &Stat) {
        // Saturated: a stored point must stay finite (JSON has no infinity).
        self.n = sat(self.n + o.n);
        self.sum = sat(self.sum + o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.values = match (self.values.take(), &o.values) {
            (Some(mut a), Some(b)) => {
                for &(v, c) in b {
                    match a.binary_search_by(|x| x.0.total_cmp(&v)) {
                        Ok(i) => a[i].1 = sat(a[i].1 + c),
                        Err(i) => a.insert(i, (v, c)),
                    }
                }
                (a.len() <= MAX_DISTINCT).then_some(a)
            }
            _ => None,
        };
    }

    /// The statistic's value, `None` for a percentile the data cannot answer.
    pub fn get(&self, s: Statistic) -> Option<f64> {
        Some(match s {
            Statistic::SampleCount => self.n,
            Statistic::Sum => self.sum,
            Statistic::Minimum => self.min,
            Statistic::Maximum => self.max,
            Statistic::Average => self.sum / self.n,
            Statistic::Percentile(p) => {
                let values = self.values.as_ref()?;
                let rank = (p / 100.0 * self.n).ceil().max(1.0);
                let mut seen = 0.0;
                for &(v, c) in values {
                    seen += c;
                    if seen >= rank {
                        return Some(v);
                    }
                }
                values.last()?.0
            }
        })
    }
}

/// A sum or count held finite: a stored point must be writable (JSON has no infinity), so
/// what overflows a double stays at its largest value.
fn sat(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-f64::MAX, f64::MAX)
    }
}

/// A statistic a query asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `pNN` or `pNN.NN`, 0 to 100.
    Percentile(f64),
}

impl Statistic {
    /// One of the five plain statistics, by AWS's name.
    pub fn plain(s: &str) -> Option<Statistic> {
        Some(match s {
            "SampleCount" => Statistic::SampleCount,
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => return None,
        })
    }

    /// A percentile: `p` then a number from 0 to 100 with at most two decimals.
    pub fn percentile(s: &str) -> Option<Statistic> {
        let n = s.strip_prefix('p')?;
        let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || frac.len() > 2 || !digits(whole) || !digits(frac)
        {
            return None;
        }
        if n.ends_with('.') {
            return None;
        }
        let v: f64 = n.parse().ok()?;
        (0.0..=100.0)
            .contains(&v)
            .then_some(Statistic::Percentile(v))
    }

    /// A `Stat` of GetMetricData's `MetricStat`: a plain statistic or a percentile.
    pub fn parse(s: &str) -> Option<Statistic> {
        Statistic::plain(s).or_else(|| Statistic::percentile(s))
    }
}

/// Data points (time in seconds, statistic set) gathered into periods of `period` seconds
/// counted from `start`, for points in `[start, end)`.
pub fn periods<'a>(
    points: impl IntoIterator<Item = (i64, &'a Stat)>,
    start: i64,
    end: i64,
    period: i64,
) -> BTreeMap<i64, Stat> {
    let mut out: BTreeMap<i64, Stat> = BTreeMap::new();
    for (t, s) in points {
        if t < start || t >= end {
            continue;
        }
        let at = start + (t - start) / period * period;
        match out.get_mut(&at) {
            Some(p) => p.merge(s),
            None => {
                out.insert(at, s.clone());
            }
        }
    }
    out
}

/// AWS's longest `Expression`.
pub const MAX_EXPRESSION: usize = 2048;
/// How deep parentheses, calls, arrays and signs may nest.
const MAX_DEPTH: usize = 64;

/// A time series: values by time stamp (seconds).
pub type Series = BTreeMap<i64, f64>;

/// A value of metric math.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    Array(Vec<Series>),
}

/// A metric math expression, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    /// Another query's id.
    Id(String),
    Neg(Box<Expr>),
    Binary(Box<Expr>, char, Box<Expr>),
    Call(String, Vec<Expr>),
    Array(Vec<Expr>),
}

/// Why an expression cannot be evaluated: AWS's wording where known.
#[derive(Debug, Clone, PartialEq)]
pub struct MathError(pub String);

impl Expr {
    pub fn parse(s: &str) -> Result<Expr, MathError> {
        if s.len() > MAX_EXPRESSION {
            return Err(MathError(format!(
                "The expression is longer than {MAX_EXPRESSION} characters"
            )));
        }
        let toks = tokens(s)?;
        let mut p = Parser {
            toks,
            at: 0,
            depth: 0,
        };
        let e = p.sum()?;
        if p.at != p.toks.len() {
            return Err(MathError(format!(
                "Syntax error in expression near {}",
                p.toks[p.at].text()
            )));
        }
        Ok(e)
    }

    /// The ids the expression reads, in order of appearance.
    pub fn ids(&self, out: &mut Vec<String>) {
        match self {
            Expr::Number(_) => {}
            Expr::Id(i) => out.push(i.clone()),
            Expr::Neg(e) => e.ids(out),
            Expr::Binary(a, _, b) => {
                a.ids(out);
                b.ids(out);
            }
            Expr::Call(_, args) | Expr::Array(args) => args.iter().for_each(|a| a.ids(out)),
        }
    }

    /// How many times it calls `METRICS()` (each reads every metric query).
    pub fn metrics_calls(&self) -> usize {
        match self {
            Expr::Call(f, args) => {
                usize::from(f == "METRICS") + args.iter().map(Expr::metrics_calls).sum::<usize>()
            }
            Expr::Array(args) => args.iter().map(Expr::metrics_calls).sum(),
            Expr::Neg(e) => e.metrics_calls(),
            Expr::Binary(a, _, b) => a.metrics_calls() + b.metrics_calls(),
            _ => 0,
        }
    }

    /// Evaluates with `lookup` giving each id's value and `metrics` the array `METRICS()`
    /// stands for.
    pub fn eval(
        &self,
        lookup: &dyn Fn(&str) -> Option<Value>,
        metrics: &dyn Fn() -> Vec<Series>,
    ) -> Result<Value, MathError> {
        Ok(match self {
            Expr::Number(n) => Value::Scalar(*n),
            Expr::Id(i) => {
                lookup(i).ok_or_else(|| MathError(format!("Unrecognized identifier: {i}")))?
            }
            Expr::Neg(e) => binary(Value::Scalar(-1.0), '*', e.eval(lookup, metrics)?)?,
            Expr::Binary(a, op, b) => {
                binary(a.eval(lookup, metrics)?, *op, b.eval(lookup, metrics)?)?
            }
            Expr::Array(items) => {
                let mut out = Vec::new();
                for i in items {
                    match i.eval(lookup, metrics)? {
                        Value::Series(s) => out.push(s),
                        Value::Array(a) => out.extend(a),
                        Value::Scalar(_) => {
                            return Err(MathError(
                                "Error in expression: an array may hold time series only".into(),
                            ))
                        }
                    }
                }
                Value::Array(out)
            }
            Expr::Call(f, args) => {
                if f == "METRICS" {
                    return Ok(Value::Array(metrics()));
                }
                let agg: fn(&[f64]) -> f64 = match f.as_str() {
                    "SUM" => |v| v.iter().sum(),
                    "AVG" => |v| v.iter().sum::<f64>() / v.len() as f64,
                    "MIN" => |v| v.iter().copied().fold(f64::INFINITY, f64::min),
                    "MAX" => |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "ABS" => {
                        let [a] = args.as_slice() else {
                            return Err(arity(f));
                        };
                        return binary_map(a.eval(lookup, metrics)?, f64::abs);
                    }
                    _ => return Err(MathError(format!("Unknown function: {f}"))),
                };
                let [a] = args.as_slice() else {
                    return Err(arity(f));
                };
                match a.eval(lookup, metrics)? {
                    Value::Scalar(_) => {
                        return Err(MathError(format!(
                        "Error in expression: {f} takes a time series or an array of time series"
                    )))
                    }
                    Value::Series(s) => {
                        let v: Vec<f64> = s.values().copied().collect();
                        if v.is_empty() {
                            Value::Series(Series::new())
                        } else {
                            Value::Scalar(agg(&v))
                        }
                    }
                    Value::Array(a) => {
                        let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                        for s in &a {
                            for (t, v) in s {
                                at.entry(*t).or_default().push(*v);
                            }
                        }
                        Value::Series(at.into_iter().map(|(t, v)| (t, agg(&v))).collect())
                    }
                }
            }
        })
    }
}

fn arity(f: &str) -> MathError {
    MathError(format!(
        "Error in expression: {f} takes exactly one argument"
    ))
}

fn binary_map(v: Value, f: fn(f64) -> f64) -> Result<Value, MathError> {
    Ok(match v {
        Value::Scalar(x) => Value::Scalar(f(x)),
        Value::Series(s) => Value::Series(s.into_iter().map(|(t, x)| (t, f(x))).collect()),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|s| s.into_iter().map(|(t, x)| (t, f(x))).collect())
                .collect(),
        ),
    })
}

fn apply(a: f64, op: char, b: f64) -> f64 {
    match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ => a / b,
    }
}

fn series_op(a: &Series, op: char, b: &Series) -> Series {
    a.iter()
        .filter_map(|(t, x)| b.get(t).map(|y| (*t, apply(*x, op, *y))))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn binary(a: Value, op: char, b: Value) -> Result<Value, MathError> {
    let finite = |s: Series| -> Series { s.into_iter().filter(|(_, v)| v.is_finite()).collect() };
    Ok(match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(apply(x, op, y)),
        (Value::Series(s), Value::Scalar(y)) => {
            Value::Series(finite(s.into_iter().map(|(t, x)| (t, apply(x, op, y))).collect()))
        }
        (Value::Scalar(x), Value::Series(s)) => {
            Value::Series(finite(s.into_iter().map(|(t, y)| (t, apply(x, op, y))).collect()))
        }
        (Value::Series(a), Value::Series(b)) => Value::Series(series_op(&a, op, &b)),
        (Value::Array(a), Value::Scalar(y)) => Value::Array(
            a.into_iter()
                .map(|s| finite(s.into_iter().map(|(t, x)| (t, apply(x, op, y))).collect()))
                .collect(),
        ),
        (Value::Scalar(x), Value::Array(a)) => Value::Array(
            a.into_iter()
                .map(|s| finite(s.into_iter().map(|(t, y)| (t, apply(x, op, y))).collect()))
                .collect(),
        ),
        (Value::Array(a), Value::Series(b)) => {
            Value::Array(a.iter().map(|s| series_op(s, op, &b)).collect())
        }
        (Value::Series(a), Value::Array(b)) => {
            Value::Array(b.iter().map(|s| series_op(&a, op, s)).collect())
        }
        (Value::Array(_), Value::Array(_)) => {
            return Err(MathError(
                "Error in expression: an arithmetic operation between two arrays of time series is not supported".into(),
            ))
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Word(String),
    Str(String),
    Sym(char),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Num(n) => n.to_string(),
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Sym(c) => c.to_string(),
        }
    }
}

fn tokens(s: &str) -> Result<Vec<Tok>, MathError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let n = s[st..i]
                .parse()
                .map_err(|_| MathError(format!("Syntax error in expression near {}", &s[st..i])))?;
            out.push(Tok::Num(n));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Word(s[st..i].to_string()));
        } else if c == '"' || c == '\'' {
            let end = s[i + 1..].find(c).ok_or_else(|| {
                MathError("Syntax error in expression: unterminated string".into())
            })?;
            out.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
            i += end + 2;
        } else if "+-*/(),[]".contains(c) {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(MathError(format!("Syntax error in expression near {c}")));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    /// How deep the parse is (each nested expression and sign).
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), MathError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(MathError(format!(
                "Syntax error in expression: expected {c} near {}",
                self.peek()
                    .map(Tok::text)
                    .unwrap_or_else(|| "the end".into())
            )))
        }
    }

    fn sum(&mut self) -> Result<Expr, MathError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(MathError(format!(
                "Error in expression: it nests deeper than {MAX_DEPTH} levels"
            )));
        }
        let e = self.sum_inner();
        self.depth -= 1;
        e
    }

    fn sum_inner(&mut self) -> Result<Expr, MathError> {
        let mut e = self.product()?;
        loop {
            let op = if self.eat('+') {
                '+'
            } else if self.eat('-') {
                '-'
            } else {
                return Ok(e);
            };
            e = Expr::Binary(Box::new(e), op, Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, MathError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat('*') {
                '*'
            } else if self.eat('/') {
                '/'
            } else {
                return Ok(e);
            };
            e = Expr::Binary(Box::new(e), op, Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        let mut signs = 0;
        while self.eat('-') {
            signs += 1;
        }
        let e = self.atom()?;
        Ok(if signs % 2 == 1 {
            Expr::Neg(Box::new(e))
        } else {
            e
        })
    }

    fn list(&mut self, close: char) -> Result<Vec<Expr>, MathError> {
        let mut out = Vec::new();
        if self.eat(close) {
            return Ok(out);
        }
        loop {
            out.push(self.sum()?);
            if self.eat(close) {
                return Ok(out);
            }
            self.expect(',')?;
        }
    }

    fn atom(&mut self) -> Result<Expr, MathError> {
        let Some(t) = self.peek().cloned() else {
            return Err(MathError(
                "Syntax error in expression: it ends too early".into(),
            ));
        };
        self.at += 1;
        match t {
            Tok::Num(n) => Ok(Expr::Number(n)),
            Tok::Sym('(') => {
                let e = self.sum()?;
                self.expect(')')?;
                Ok(e)
            }
            Tok::Sym('[') => Ok(Expr::Array(self.list(']')?)),
            Tok::Word(w) => {
                if self.eat('(') {
                    let upper = w.to_ascii_uppercase();
                    if upper == "METRICS" {
                        // METRICS() or METRICS("filter"): the filter is not supported.
                        let args = self.strings_until_close()?;
                        if !args.is_empty() {
                            return Err(MathError(
                                "Error in expression: METRICS() with a label filter is not supported by Kumo".into(),
                            ));
                        }
                        return Ok(Expr::Call(upper, Vec::new()));
                    }
                    Ok(Expr::Call(upper, self.list(')')?))
                } else {
                    Ok(Expr::Id(w))
                }
            }
            other => Err(MathError(format!(
                "Syntax error in expression near {}",
                other.text()
            ))),
        }
    }

    fn strings_until_close(&mut self) -> Result<Vec<String>, MathError> {
        let mut out = Vec::new();
        while let Some(Tok::Str(s)) = self.peek().cloned() {
            self.at += 1;
            out.push(s);
            if !self.eat(',') {
                break;
            }
        }
        self.expect(')')?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    #[test]
    fn statistics_of_raw_values_and_sets() {
        let mut s = Stat::value(1.0, 1.0);
        for v in [2.0, 3.0, 4.0] {
            s.merge(&Stat::value(v, 1.0));
        }
        assert_eq!(s.get(Statistic::SampleCount), Some(4.0));
        assert_eq!(s.get(Statistic::Average), Some(2.5));
        assert_eq!(s.get(Statistic::Minimum), Some(1.0));
        assert_eq!(s.get(Statistic::Maximum), Some(4.0));
        assert_eq!(s.get(Statistic::Percentile(50.0)), Some(2.0));
        assert_eq!(s.get(Statistic::Percentile(100.0)), Some(4.0));
        assert_eq!(s.get(Statistic::Percentile(0.0)), Some(1.0));
        // A statistic set with a spread loses the distribution.
        s.merge(&Stat::set(2.0, 10.0, 4.0, 6.0));
        assert_eq!(s.get(Statistic::Percentile(50.0)), None);
        assert_eq!(s.get(Statistic::Sum), Some(20.0));
        // Merges saturate instead of overflowing to infinity.
        let mut big = Stat::value(f64::MAX, 1.0);
        big.merge(&Stat::value(f64::MAX, 1.0));
        assert!(big.sum.is_finite());
    }

    #[test]
    fn percentile_names() {
        assert_eq!(Statistic::parse("p99"), Some(Statistic::Percentile(99.0)));
        assert_eq!(
            Statistic::parse("p99.95"),
            Some(Statistic::Percentile(99.95))
        );
        for bad in ["p", "p101", "p99.999", "p9.", "P99", "pten", "Avg"] {
            assert_eq!(Statistic::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_count_from_start() {
        let a = Stat::value(1.0, 1.0);
        let b = Stat::value(3.0, 1.0);
        let p = periods([(60, &a), (119, &b), (120, &a), (300, &b)], 60, 300, 60);
        assert_eq!(p.len(), 2);
        assert_eq!(p[&60].get(Statistic::Average), Some(2.0));
        assert_eq!(p[&120].n, 1.0);
    }

    #[test]
    fn math_over_series_and_arrays() {
        let m1 = series(&[(0, 1.0), (60, 2.0), (120, 3.0)]);
        let m2 = series(&[(0, 10.0), (60, 20.0)]);
        let lookup = |i: &str| match i {
            "m1" => Some(Value::Series(m1.clone())),
            "m2" => Some(Value::Series(m2.clone())),
            _ => None,
        };
        let all = || vec![m1.clone(), m2.clone()];
        let ev = |s: &str| Expr::parse(s).unwrap().eval(&lookup, &all);
        assert_eq!(
            ev("m1 + m2").unwrap(),
            Value::Series(series(&[(0, 11.0), (60, 22.0)]))
        );
        assert_eq!(
            ev("SUM(METRICS())").unwrap(),
            Value::Series(series(&[(0, 11.0), (60, 22.0), (120, 3.0)]))
        );
        assert_eq!(
            ev("AVG([m1, m2])").unwrap(),
            Value::Series(series(&[(0, 5.5), (60, 11.0), (120, 3.0)]))
        );
        assert_eq!(
            ev("MAX([m1,m2]) * 2").unwrap(),
            Value::Series(series(&[(0, 20.0), (60, 40.0), (120, 6.0)]))
        );
        assert_eq!(ev("SUM(m1)").unwrap(), Value::Scalar(6.0));
        assert_eq!(
            ev("-(m2 / 10)").unwrap(),
            Value::Series(series(&[(0, -1.0), (60, -2.0)]))
        );
        // Division by zero leaves the point out.
        assert_eq!(
            ev("m1 / (m2 - 10)").unwrap(),
            Value::Series(series(&[(60, 0.2)]))
        );
        assert!(ev("m3 + 1").is_err());
        assert!(ev("FOO(m1)").is_err());
        assert!(Expr::parse("m1 +").is_err());
        assert!(Expr::parse("(m1").is_err());
        assert!(Expr::parse("m1 m2").is_err());
        // Bounded: AWS's 2,048 characters, and a nesting depth.
        assert!(Expr::parse(&"(".repeat(1500)).is_err());
        assert!(Expr::parse(&format!("{}1{}", "(".repeat(100), ")".repeat(100))).is_err());
        assert!(Expr::parse(&"m1+".repeat(700)).is_err());
        assert_eq!(ev("---m1").unwrap(), ev("-m1").unwrap());
    }

    #[test]
    fn ids_in_order() {
        let mut ids = Vec::new();
        Expr::parse("SUM([a, b]) / c").unwrap().ids(&mut ids);
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            Expr::parse("SUM(METRICS()) / AVG(METRICS())")
                .unwrap()
                .metrics_calls(),
            2
        );
    }
}

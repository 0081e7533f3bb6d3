//! Mining a prior source: baskets of category labels in, category counts and the
//! links between categories out. The same counting serves a basket file of category
//! names (Groceries) and a store's orders mapped to its categories (merchant categories,
//! or clusters of titles where it has none).

use std::collections::HashMap;

use super::{PriorCategory, PriorLink, PriorSource};

/// Links kept in the file: bought together at least this often, and more often than
/// chance (the run applies its own, stricter bar).
pub const MIN_LINK_COUNT: u32 = 10;
pub const MIN_LINK_LIFT: f64 = 1.2;
/// Upper bounds of the basket-size strata (distinct categories per basket).
const STRATA: [usize; 9] = [1, 2, 3, 4, 6, 9, 14, 22, 35];

/// One source from baskets of category labels. `examples` gives each category's
/// typical product titles (none: its name describes it).
pub fn source_from_baskets<'a>(
    name: &str,
    baskets: impl IntoIterator<Item = Vec<&'a str>>,
    examples: &HashMap<String, Vec<String>>,
) -> PriorSource {
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    // Per basket-size stratum: baskets, and baskets holding each category.
    let mut strata: Vec<(u64, HashMap<u32, u32>)> = vec![(0, HashMap::new()); STRATA.len() + 1];
    let mut counts: Vec<u32> = Vec::new();
    let mut pairs: HashMap<(u32, u32), u32> = HashMap::new();
    let mut n_baskets = 0u64;
    let mut present: Vec<u32> = Vec::new();
    for basket in baskets {
        present.clear();
        for label in basket {
            let label = label.trim();
            if label.is_empty() {
                continue;
            }
            let id = match index.get(label) {
                Some(&id) => id,
                None => {
                    let id = names.len() as u32;
                    index.insert(label.to_owned(), id);
                    names.push(label.to_owned());
                    counts.push(0);
                    id
                }
            };
            present.push(id);
        }
        present.sort_unstable();
        present.dedup();
        if present.is_empty() {
            continue;
        }
        n_baskets += 1;
        let stratum = &mut strata[STRATA.partition_point(|&s| s < present.len())];
        stratum.0 += 1;
        for (x, &a) in present.iter().enumerate() {
            counts[a as usize] += 1;
            *stratum.1.entry(a).or_default() += 1;
            for &b in &present[x + 1..] {
                *pairs.entry((a, b)).or_default() += 1;
            }
        }
    }
    // What chance predicts for a pair, within each basket size: a wholesaler's
    // hundred-line orders hold every category, and would otherwise make every category
    // they favour look linked to every other.
    let expected_of = |a: u32, b: u32| -> f64 {
        strata
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, held)| {
                let ca = held.get(&a).copied().unwrap_or(0);
                let cb = held.get(&b).copied().unwrap_or(0);
                f64::from(ca) * f64::from(cb) / *n as f64
            })
            .sum()
    };
    // Categories by name, so that the file diffs well from one build to the next.
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let categories: Vec<PriorCategory> = order
        .iter()
        .map(|&i| {
            let name = names[i as usize].clone();
            PriorCategory {
                examples: examples.get(&name).cloned().unwrap_or_default(),
                baskets: counts[i as usize],
                name,
            }
        })
        .collect();
    let mut links: Vec<PriorLink> = pairs
        .into_iter()
        .filter_map(|((a, b), count)| {
            let expected = expected_of(a, b);
            let lift = f64::from(count) / expected.max(f64::MIN_POSITIVE);
            let (x, y) = (&names[a as usize], &names[b as usize]);
            let (x, y) = if x <= y { (x, y) } else { (y, x) };
            (count >= MIN_LINK_COUNT && lift >= MIN_LINK_LIFT).then(|| PriorLink {
                a: x.clone(),
                b: y.clone(),
                count,
                expected: (expected * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    links.sort_by(|l, m| (&l.a, &l.b).cmp(&(&m.a, &m.b)));
    PriorSource {
        name: name.to_owned(),
        baskets: n_baskets,
        categories,
        links,
    }
}

/// Baskets of a file whose every line is one basket of comma-separated category names
/// (the Groceries shape). Blank lines are skipped.
pub fn category_basket_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|line| {
            line.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_counted_per_basket_against_chance_at_each_basket_size() {
        // Pairs of two: milk meets cereal in 20 of 40 where chance predicts 22 × 22 /
        // 40 = 12.1; bread meets each of them less often than chance.
        let mut text = String::new();
        text.push_str(&"milk,cereal\n".repeat(20));
        text.push_str(&"milk,bread\n".repeat(2));
        text.push_str(&"cereal,bread\n".repeat(2));
        text.push_str(&"bread,jam\n".repeat(16));
        // Big baskets hold everything: they say nothing about what goes with what.
        text.push_str(&"milk,cereal,bread,jam,tea,eggs,rice,salt,oil,soap\n".repeat(10));
        let s = source_from_baskets("Test", category_basket_lines(&text), &HashMap::new());
        assert_eq!(s.baskets, 50);
        let names: Vec<&str> = s.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[..4], ["bread", "cereal", "eggs", "jam"]);
        let milk = s
            .categories
            .iter()
            .find(|c| c.name == "milk")
            .expect("milk");
        assert_eq!(milk.baskets, 32, "a category counts once per basket");
        let linked: Vec<(&str, &str, u32)> = s
            .links
            .iter()
            .map(|l| (l.a.as_str(), l.b.as_str(), l.count))
            .collect();
        assert!(linked.contains(&("cereal", "milk", 30)), "{linked:?}");
        let l = s.links.iter().find(|l| l.a == "cereal").expect("link");
        // 10 in the big baskets (all of them) plus 12.1 among the pairs.
        assert!((l.expected - 22.1).abs() < 1e-9, "{}", l.expected);
        // The big baskets' categories are not linked to each other.
        assert!(
            !linked.iter().any(|&(a, b, _)| (a, b) == ("eggs", "tea")),
            "{linked:?}"
        );
    }
}

//! Embeddings: the real local model, the cache, and `similar`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bundleforge::app;
use bundleforge::domain::StoreId;
use bundleforge::embed::{
    EmbedError, Embedder, HashingEmbedder, LocalEmbedder, LocalModelPaths, embed_products,
};
use bundleforge::index::metric::dot_scalar;
use bundleforge::ingest::IngestSources;
use bundleforge::store::CatalogStore;

use crate::support::{TestDb, catalog, orders, repo_root, shared_data};

fn local_model() -> Arc<LocalEmbedder> {
    let paths = LocalModelPaths::resolve("", "");
    match LocalEmbedder::load(&paths, 0, 32) {
        Ok(m) => Arc::new(m),
        Err(e) => panic!("the local model must be installed by scripts/setup: {e}"),
    }
}

#[tokio::test]
async fn the_real_model_puts_related_products_closer() {
    let model = local_model();
    let texts: Vec<String> = [
        "green tea",
        "matcha powder",
        "hiking boots",
        "loose leaf oolong tea",
        "trail running shoes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = model.embed(&texts).await.unwrap();
    assert_eq!(v.len(), 5);
    assert!(v.iter().all(|x| x.len() == 384));
    for x in &v {
        assert!((dot_scalar(x, x) - 1.0).abs() < 1e-4, "unit length");
    }
    let cos = |a: usize, b: usize| dot_scalar(&v[a], &v[b]);
    assert!(
        cos(0, 1) > cos(0, 2),
        "green tea ~ matcha {} vs boots {}",
        cos(0, 1),
        cos(0, 2)
    );
    assert!(cos(0, 3) > cos(0, 4));
    assert!(cos(2, 4) > cos(2, 1), "boots ~ running shoes");
    // Order of a batch does not change a text's vector (batches are length-sorted).
    let alone = model.embed(&texts[2..3]).await.unwrap();
    assert!(dot_scalar(&alone[0], &v[2]) > 0.9999);
}

/// Counts what reaches the inner embedder.
struct Counting {
    inner: HashingEmbedder,
    texts: AtomicUsize,
}

#[async_trait]
impl Embedder for Counting {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn a_second_run_embeds_only_what_changed() {
    let db = TestDb::new().await;
    let csv =
        "id,title,sku,price\na,Green Tea,A,5.00\nb,Matcha Powder,B,9.00\nc,Hiking Boots,C,90.00\n";
    db.ingest_ok("s", catalog(db.file("p.csv", csv))).await;
    let id = StoreId::parse("s").unwrap();
    let counting = Counting {
        inner: HashingEmbedder::new(64),
        texts: AtomicUsize::new(0),
    };
    let data = db.store.load(&id).await.unwrap();
    let (m1, s1) = embed_products(&counting, &db.store, &data.products, 100)
        .await
        .unwrap();
    assert_eq!((s1.embedded, s1.from_cache), (3, 0));
    let (m2, s2) = embed_products(&counting, &db.store, &data.products, 100)
        .await
        .unwrap();
    assert_eq!((s2.embedded, s2.from_cache), (0, 3));
    assert_eq!(m1.as_slice(), m2.as_slice());
    assert_eq!(counting.texts.load(Ordering::SeqCst), 3);

    let changed = "id,title,sku,price\na,Green Tea,A,5.00\nb,Ceremonial Matcha Powder,B,9.00\nc,Hiking Boots,C,90.00\n";
    db.ingest_ok("s", catalog(db.file("p2.csv", changed))).await;
    let data = db.store.load(&id).await.unwrap();
    let (_, s3) = embed_products(&counting, &db.store, &data.products, 100)
        .await
        .unwrap();
    assert_eq!((s3.embedded, s3.from_cache), (1, 2));
    assert_eq!(counting.texts.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn similar_leaves_out_the_product_and_its_own_variants() {
    let db = TestDb::new().await;
    let small = repo_root().join("fixtures/stores/small");
    db.ingest_ok(
        "small",
        IngestSources::from_paths(None, Some(small.join("products.csv")), None, None),
    )
    .await;
    let id = StoreId::parse("small").unwrap();
    let data = db.store.load(&id).await.unwrap();
    // A product with several variants.
    let family = data
        .products
        .iter()
        .find(|p| {
            data.products
                .iter()
                .filter(|q| q.product_id == p.product_id)
                .count()
                > 1
        })
        .expect("the small store has a product with variants");
    let services = crate::support::services_for(
        &db,
        std::sync::Arc::new(HashingEmbedder::new(64)),
        db.settings.clone(),
    )
    .await;
    let out = app::similar(&services, &id, &family.variant_id, 10)
        .await
        .unwrap();
    assert_eq!(out.neighbours.len(), 10);
    for n in &out.neighbours {
        let p = data
            .products
            .iter()
            .find(|p| p.variant_id == n.product_id)
            .unwrap();
        assert_ne!(p.product_id, family.product_id);
    }
    assert!(out.neighbours.windows(2).all(|w| w[0].score >= w[1].score));
    let err = app::similar(&services, &id, "no-such-sku", 5)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-sku"));
}

#[tokio::test]
async fn online_retail_t_light_holders_neighbour_t_light_holders_and_hearts() {
    let db = TestDb::new().await;
    db.ingest_ok(
        "uci",
        orders(shared_data("online_retail/online_retail.csv.gz")),
    )
    .await;
    let id = StoreId::parse("uci").unwrap();
    let services = crate::support::services_for(&db, local_model(), db.settings.clone()).await;
    // 85123A: WHITE HANGING HEART T-LIGHT HOLDER.
    let out = app::similar(&services, &id, "85123A", 10).await.unwrap();
    assert_eq!(out.product.title, "WHITE HANGING HEART T-LIGHT HOLDER");
    let related = out
        .neighbours
        .iter()
        .filter(|n| {
            n.title.contains("T-LIGHT") || n.title.contains("HEART") || n.title.contains("TLIGHT")
        })
        .count();
    assert!(related >= 7, "neighbours: {:#?}", out.neighbours);
}

//! Property tests of the image reference and Liferay DXP tag parsers, and of inference on
//! arbitrary images: every tag the parser accepts prints back as written, tags built from the
//! vendor's anatomy are accepted, and no string makes anything panic.

use cutover::rules::image::{DxpTag, ImageRef};
use cutover::rules::{Catalog, infer};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use proptest::prelude::*;

fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(serde_json::json!({
        "spec": {"containers": [{"name": "liferay", "image": image}]}
    }))
    .unwrap()
}

/// Tags made of the anatomy's parts: VERSION-RELEASE[-dIMAGE][-TIMESTAMP][-slim].
fn anatomy() -> impl Strategy<Value = String> {
    (
        (1u32..10, 0u32..10, 0u32..100),
        ("[a-z]{1,4}", any::<bool>(), 0u32..1000),
        proptest::option::of((1u32..10, 0u32..10, 0u32..20)),
        proptest::option::of("[0-9]{14}"),
        any::<bool>(),
    )
        .prop_map(|(v, (letters, dash, number), image, stamp, slim)| {
            let mut tag = format!("{}.{}.{}-{letters}", v.0, v.1, v.2);
            tag.push_str(if dash { "-" } else { "" });
            tag.push_str(&number.to_string());
            if let Some((a, b, c)) = image {
                tag.push_str(&format!("-d{a}.{b}.{c}"));
            }
            if let Some(stamp) = stamp {
                tag.push_str(&format!("-{stamp}"));
            }
            if slim {
                tag.push_str("-slim");
            }
            tag
        })
}

proptest! {
    #[test]
    fn accepted_tags_print_back_as_written(tag in "[0-9a-z.-]{0,40}") {
        if let Some(parsed) = DxpTag::parse(&tag) {
            prop_assert_eq!(parsed.to_string(), tag);
        }
    }

    #[test]
    fn tags_of_the_anatomy_are_read(tag in anatomy()) {
        let parsed = DxpTag::parse(&tag);
        prop_assert!(parsed.is_some(), "{} was not read", tag);
        prop_assert_eq!(parsed.unwrap().to_string(), tag.clone());
        let image = format!("liferay/dxp:{tag}");
        let reference = ImageRef::parse(&image);
        prop_assert!(reference.is_ok(), "{:?}", reference);
    }

    #[test]
    fn no_string_panics(s in any::<String>(), t in any::<String>()) {
        let _ = DxpTag::parse(&s);
        let _ = ImageRef::parse(&s);
        let _ = infer(&template(&s), &template(&t), Catalog::builtin().inference());
    }

    #[test]
    fn two_tags_of_one_version_give_a_fix_pack_or_app_server_change(a in anatomy(), b in anatomy()) {
        let found = infer(
            &template(&format!("liferay/dxp:{a}")),
            &template(&format!("liferay/dxp:{b}")),
            Catalog::builtin().inference(),
        )
        .unwrap();
        if a == b {
            prop_assert!(found.is_empty());
        } else {
            prop_assert_eq!(found.len(), 1);
            prop_assert!(!found[0].unrecognized_image);
        }
    }
}

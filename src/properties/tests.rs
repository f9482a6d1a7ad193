use super::*;
use serde_json::json;

#[test]
fn text_and_map_agree_and_names_stay_unique() {
    let mut p = Properties::new();
    p.insert("a", 1);
    p.insert("quote\"d", json!({"x": [1, "y"]}));
    p.insert("a", "again");
    let map = p.to_map();
    assert_eq!(
        map,
        *json!({"a": "again", "quote\"d": {"x": [1, "y"]}})
            .as_object()
            .unwrap()
    );
    assert_eq!(p.len(), 2);
    let object: Value = serde_json::from_str(&format!("{{{}}}", p.members())).unwrap();
    assert_eq!(object, Value::Object(map.clone()));
    assert_eq!(Properties::from_map(&map).to_map(), map);
    assert!(Properties::new().members().is_empty());
}

#[test]
fn names_are_read_back_past_nested_values_and_punctuation_in_strings() {
    let mut p = Properties::new();
    p.insert("s", "a,b\",\"c\":1");
    p.insert("o", json!({"x": [1, {"y": ","}], "z": "}"}));
    p.insert("n", 1.5);
    p.insert("last", Value::Null);
    assert_eq!(p.keys().collect::<Vec<_>>(), ["s", "o", "n", "last"]);
    assert_eq!(p.len(), 4);
    p.insert("o", false);
    assert_eq!(p.to_map()["o"], json!(false));
    assert_eq!(p.len(), 4);
}

#[test]
fn every_repeated_name_replaces_the_earlier_value_whatever_its_hash() {
    // Far more names than the filter has bits: many share one, and each repeat must still
    // be found.
    let mut p = Properties::new();
    for i in 0..300 {
        p.insert(format!("k{i}"), i);
    }
    for i in (0..300).step_by(7) {
        p.insert(format!("k{i}"), -1);
    }
    let map = p.to_map();
    assert_eq!(map.len(), 300);
    assert_eq!(p.len(), 300);
    for i in 0..300 {
        let expected = if i % 7 == 0 { -1 } else { i };
        assert_eq!(map[&format!("k{i}")], json!(expected), "k{i}");
    }
}

#[test]
fn values_written_directly_read_back_as_their_json_values() {
    let mut direct = Properties::new();
    direct.insert("s", "quote\" and \\ and \n");
    direct.insert("owned", String::from("é"));
    direct.insert("i", -7i64);
    direct.insert("u", u64::MAX);
    direct.insert("f", 12.5);
    direct.insert("tiny", 1e-300);
    direct.insert("yes", true);
    direct.insert("nan", f64::NAN);
    direct.set_owner("user-1");
    direct.insert("after_owner", 1u8);
    let mut via_values = Properties::new();
    for (key, value) in [
        ("s", json!("quote\" and \\ and \n")),
        ("owned", json!("é")),
        ("i", json!(-7)),
        ("u", json!(u64::MAX)),
        ("f", json!(12.5)),
        ("tiny", json!(1e-300)),
        ("yes", json!(true)),
        ("after_owner", json!(1)),
    ] {
        via_values.insert(key, value);
    }
    assert_eq!(direct.members(), via_values.members());
    assert_eq!(direct.refused(), 1, "the NaN");
    assert_eq!(direct.owner(), Some("user-1"));
    assert_eq!(direct.len(), 8);
}

#[test]
fn escaped_names_are_listed_as_set() {
    let mut p = Properties::new();
    p.insert("plain", 1);
    p.insert("tab\there", 2);
    p.insert("after", 3);
    assert_eq!(
        p.keys().collect::<Vec<_>>(),
        ["plain", "tab\there", "after"]
    );
    assert_eq!(p.to_map()["tab\there"], json!(2));

    let mut first = Properties::new();
    first.insert("quote\"first", 1);
    first.insert("next", 2);
    assert_eq!(first.keys().collect::<Vec<_>>(), ["quote\"first", "next"]);
}

#[test]
fn the_owner_id_rides_behind_the_members() {
    let mut p = Properties::new();
    p.insert("a", 1);
    p.set_owner("user-42");
    assert_eq!(p.members(), "\"a\":1");
    assert_eq!(p.owner(), Some("user-42"));
    p.insert("b", "x");
    p.insert("a", 2); // the rebuild path
    // A rebuild writes the members in the map's order.
    assert_eq!(p.members(), "\"a\":2,\"b\":\"x\"");
    assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(p.owner(), Some("user-42"));
    p.set_owner(&"é".repeat(150));
    p.insert("c", true);
    assert_eq!(p.owner(), Some("é".repeat(150).as_str()));
    assert_eq!(p.len(), 3);
    let mut empty = Properties::new();
    empty.set_owner("u");
    assert!(empty.is_empty());
    assert_eq!(empty.members(), "");
}

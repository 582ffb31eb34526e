use super::*;
use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::record::{ConnectRecord, Header};

const T: &str = "org.apache.kafka.connect.transforms.";

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn make(class: &str, pairs: &[(&str, &str)]) -> Box<dyn Transformation> {
    transformation_for_class(&format!("{T}{class}"), &props(pairs)).unwrap()
}

fn err(class: &str, pairs: &[(&str, &str)]) -> String {
    transformation_for_class(&format!("{T}{class}"), &props(pairs))
        .unwrap_err()
        .to_string()
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (s(k), v.clone())).collect())
}

fn person_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("Person")
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .field("name", Schema::primitive(Type::String, true))
        .unwrap()
        .field("age", Schema::primitive(Type::Int32, true))
        .unwrap()
        .build()
}

fn person() -> Value {
    Value::Struct(
        Struct::new(person_schema())
            .unwrap()
            .with("id", Value::Int64(7))
            .unwrap()
            .with("name", s("Ann"))
            .unwrap()
            .with("age", Value::Int32(40))
            .unwrap(),
    )
}

fn with_schema() -> ConnectRecord {
    ConnectRecord::new("orders", Some(person_schema()), person())
}

fn schemaless() -> ConnectRecord {
    ConnectRecord::new(
        "orders",
        None,
        map(&[("id", Value::Int64(7)), ("name", s("Ann"))]),
    )
}

fn apply(t: &dyn Transformation, r: ConnectRecord) -> ConnectRecord {
    t.apply(r).unwrap().unwrap()
}

#[test]
fn registry_knows_kafka_names_and_lists_them_for_unknown_ones() {
    let names = known_transformations();
    assert!(names.contains(&format!("{T}InsertField$Value")));
    assert!(names.contains(&"com.github.cjmatta.kafka.connect.smt.InsertUuid$Value".to_string()));
    let e = transformation_for_class("com.example.Nope", &Props::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("com.example.Nope") && e.contains("ExtractField$Key"),
        "{e}"
    );
    assert!(known_predicates()
        .iter()
        .any(|p| p.ends_with("predicates.HasHeaderKey")));
}

#[test]
fn extract_field_with_and_without_schema() {
    let t = make("ExtractField$Value", &[("field", "name")]);
    let r = apply(t.as_ref(), with_schema());
    assert_eq!(r.value, s("Ann"));
    assert_eq!(r.value_schema.unwrap().schema_type, Type::String);
    assert_eq!(apply(t.as_ref(), schemaless()).value, s("Ann"));
    let tomb = apply(t.as_ref(), ConnectRecord::new("t", None, Value::Null));
    assert_eq!(tomb.value, Value::Null);
    let bad = make("ExtractField$Value", &[("field", "nope")]);
    assert_eq!(
        bad.apply(with_schema()).unwrap_err().to_string(),
        "Unknown field: nope"
    );
    let e = t
        .apply(ConnectRecord::new("t", None, Value::Int32(1)))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Only Map objects supported in absence of schema for [field extraction], found: java.lang.Integer"
    );
    assert_eq!(
        err("ExtractField$Key", &[]),
        "Missing required configuration \"field\" which has no default value."
    );
    // Nested with V2.
    let nested = make(
        "ExtractField$Value",
        &[("field", "a.b"), ("field.syntax.version", "V2")],
    );
    let v = map(&[("a", map(&[("b", Value::Int8(3))]))]);
    assert_eq!(
        apply(nested.as_ref(), ConnectRecord::new("t", None, v)).value,
        Value::Int8(3)
    );
    assert!(err(
        "ExtractField$Value",
        &[("field", "a"), ("field.syntax.version", "V3")]
    )
    .contains("field.syntax.version"));
    // Key variant.
    let k = make("ExtractField$Key", &[("field", "id")]);
    let mut rec = schemaless();
    rec.key = map(&[("id", Value::Int64(1))]);
    assert_eq!(apply(k.as_ref(), rec).key, Value::Int64(1));
}

#[test]
fn value_to_key_with_and_without_schema() {
    let t = make("ValueToKey", &[("fields", "id,name")]);
    let r = apply(t.as_ref(), with_schema());
    match &r.key {
        Value::Struct(k) => {
            assert_eq!(k.get("id"), Some(&Value::Int64(7)));
            assert_eq!(k.schema().fields.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let r = apply(t.as_ref(), schemaless());
    assert_eq!(r.key, map(&[("id", Value::Int64(7)), ("name", s("Ann"))]));
    let bad = make("ValueToKey", &[("fields", "zip")]);
    assert_eq!(
        bad.apply(with_schema()).unwrap_err().to_string(),
        "Field does not exist: zip"
    );
    assert!(err("ValueToKey", &[]).contains("\"fields\""));
}

#[test]
fn insert_field_with_and_without_schema() {
    let t = make(
        "InsertField$Value",
        &[
            ("topic.field", "t!"),
            ("partition.field", "p"),
            ("timestamp.field", "ts"),
            ("static.field", "where"),
            ("static.value", "here"),
        ],
    );
    let mut rec = with_schema();
    rec.partition = Some(3);
    rec.timestamp = Some(1000);
    let r = apply(t.as_ref(), rec.clone());
    let schema = r.value_schema.clone().unwrap();
    assert!(!schema.field("t").unwrap().schema.optional);
    assert!(schema.field("p").unwrap().schema.optional);
    assert_eq!(schema.name.as_deref(), Some("Person"));
    assert_eq!(r.value.get("t"), Some(&s("orders")));
    assert_eq!(r.value.get("p"), Some(&Value::Int32(3)));
    assert_eq!(r.value.get("ts"), Some(&Value::Timestamp(1000)));
    assert_eq!(r.value.get("where"), Some(&s("here")));
    let mut rec = schemaless();
    rec.timestamp = Some(5);
    let r = apply(t.as_ref(), rec);
    assert_eq!(r.value.get("ts"), Some(&Value::Int64(5)));
    assert_eq!(r.value.get("p"), None, "no partition, no field");
    // Offsets only on sink records.
    let o = make("InsertField$Value", &[("offset.field", "o")]);
    assert!(o
        .apply(schemaless())
        .unwrap_err()
        .to_string()
        .contains("SinkRecord"));
    let mut sink = schemaless();
    sink.kafka_offset = Some(42);
    assert_eq!(
        apply(o.as_ref(), sink).value.get("o"),
        Some(&Value::Int64(42))
    );
    // Tombstones pass.
    let tomb = ConnectRecord::new("t", None, Value::Null);
    assert_eq!(apply(t.as_ref(), tomb.clone()), tomb);
}

#[test]
fn replace_field_include_exclude_renames() {
    let t = make(
        "ReplaceField$Value",
        &[("exclude", "age"), ("renames", "name:full_name")],
    );
    let r = apply(t.as_ref(), with_schema());
    let schema = r.value_schema.clone().unwrap();
    let names: Vec<_> = schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "full_name"]);
    assert_eq!(r.value.get("full_name"), Some(&s("Ann")));
    let r = apply(t.as_ref(), schemaless());
    assert_eq!(
        r.value,
        map(&[("id", Value::Int64(7)), ("full_name", s("Ann"))])
    );
    let inc = make("ReplaceField$Value", &[("include", "id")]);
    assert_eq!(
        apply(inc.as_ref(), schemaless()).value,
        map(&[("id", Value::Int64(7))])
    );
    assert_eq!(
        err("ReplaceField$Value", &[("renames", "a:b,c")]),
        "Invalid value [a:b, c] for configuration renames: Invalid rename mapping: c"
    );
}

#[test]
fn mask_field_with_and_without_schema() {
    let t = make("MaskField$Value", &[("fields", "name,age")]);
    let r = apply(t.as_ref(), with_schema());
    assert_eq!(r.value.get("name"), Some(&s("")));
    assert_eq!(r.value.get("age"), Some(&Value::Int32(0)));
    let r = apply(t.as_ref(), schemaless());
    assert_eq!(r.value.get("name"), Some(&s("")));
    assert_eq!(r.value.get("age"), Some(&Value::Null));
    let t = make(
        "MaskField$Value",
        &[("fields", "age"), ("replacement", "99")],
    );
    assert_eq!(
        apply(t.as_ref(), with_schema()).value.get("age"),
        Some(&Value::Int32(99))
    );
    let t = make(
        "MaskField$Value",
        &[("fields", "age"), ("replacement", "x")],
    );
    assert!(t
        .apply(with_schema())
        .unwrap_err()
        .to_string()
        .contains("Unable to convert x"));
    assert!(
        err("MaskField$Value", &[("fields", "a"), ("replacement", " ")]).contains("replacement")
    );
}

#[test]
fn hoist_field_and_set_schema_metadata() {
    let t = make("HoistField$Value", &[("field", "wrapped")]);
    let r = apply(t.as_ref(), with_schema());
    assert_eq!(r.value.get("wrapped"), Some(&person()));
    let r = apply(t.as_ref(), ConnectRecord::new("t", None, Value::Int8(1)));
    assert_eq!(r.value, map(&[("wrapped", Value::Int8(1))]));

    let m = make(
        "SetSchemaMetadata$Value",
        &[("schema.name", "com.example.P"), ("schema.version", "3")],
    );
    let r = apply(m.as_ref(), with_schema());
    let schema = r.value_schema.clone().unwrap();
    assert_eq!(schema.name.as_deref(), Some("com.example.P"));
    assert_eq!(schema.version, Some(3));
    match &r.value {
        Value::Struct(v) => assert_eq!(**v.schema(), *schema),
        other => panic!("{other:?}"),
    }
    assert!(m
        .apply(schemaless())
        .unwrap_err()
        .to_string()
        .contains("Schema required"));
    assert_eq!(
        err("SetSchemaMetadata$Key", &[]),
        "Neither schema name nor version configured"
    );
    assert!(err("SetSchemaMetadata$Key", &[("schema.version", "x")])
        .starts_with("Invalid value x for configuration schema.version"));
}

#[test]
fn routers_and_filter() {
    let t = make(
        "RegexRouter",
        &[("regex", "(.*)-(\\d+)"), ("replacement", "$2_$1\\$")],
    );
    assert_eq!(
        apply(t.as_ref(), ConnectRecord::new("db-42", None, Value::Null)).topic,
        "42_db$"
    );
    assert_eq!(
        apply(t.as_ref(), ConnectRecord::new("other", None, Value::Null)).topic,
        "other"
    );
    assert!(err("RegexRouter", &[("regex", "("), ("replacement", "x")])
        .starts_with("Invalid value ( for configuration regex: Invalid regex"));
    assert!(err("RegexRouter", &[("regex", "x")]).contains("\"replacement\""));

    let ts = make(
        "TimestampRouter",
        &[
            ("topic.format", "${topic}_${timestamp}"),
            ("timestamp.format", "yyyy-MM-dd'T'HH:mm:ss.SSS"),
        ],
    );
    let mut r = ConnectRecord::new("logs", None, Value::Null);
    r.timestamp = Some(1_700_000_000_123);
    assert_eq!(
        apply(ts.as_ref(), r.clone()).topic,
        "logs_2023-11-14T22:13:20.123"
    );
    let d = make("TimestampRouter", &[]);
    assert_eq!(apply(d.as_ref(), r).topic, "logs-20231114");
    assert!(d.apply(ConnectRecord::new("x", None, Value::Null)).is_err());
    assert!(err("TimestampRouter", &[("timestamp.format", "yyyyQ")]).contains("'Q'"));

    let f = make("Filter", &[]);
    assert_eq!(f.apply(schemaless()).unwrap(), None);
}

#[test]
fn header_transforms() {
    let ins = make("InsertHeader", &[("header", "h"), ("value.literal", "42")]);
    let r = apply(ins.as_ref(), schemaless());
    assert_eq!(r.last_header("h").unwrap().value, Value::Int8(42));
    let ins = make(
        "InsertHeader",
        &[("header", "h"), ("value.literal", "hello")],
    );
    let r = apply(ins.as_ref(), r);
    assert_eq!(r.last_header("h").unwrap().value, s("hello"));
    let drop = make("DropHeaders", &[("headers", "h")]);
    assert!(apply(drop.as_ref(), r).headers.is_empty());
    assert!(err("InsertHeader", &[("header", "h")]).contains("value.literal"));

    let mv = make(
        "HeaderFrom$Value",
        &[("fields", "name"), ("headers", "n"), ("operation", "move")],
    );
    let r = apply(mv.as_ref(), with_schema());
    assert_eq!(r.last_header("n").unwrap().value, s("Ann"));
    assert!(r.value_schema.unwrap().field("name").is_none());
    let r = apply(mv.as_ref(), schemaless());
    assert_eq!(r.value, map(&[("id", Value::Int64(7))]));
    assert_eq!(r.last_header("n").unwrap().value, s("Ann"));
    let cp = make(
        "HeaderFrom$Value",
        &[("fields", "name"), ("headers", "n"), ("operation", "copy")],
    );
    let r = apply(cp.as_ref(), with_schema());
    assert_eq!(r.value, person());
    assert_eq!(
        err(
            "HeaderFrom$Value",
            &[("fields", "a,b"), ("headers", "n"), ("operation", "copy")]
        ),
        "'fields' config must have the same number of elements as 'headers' config."
    );
    assert!(err(
        "HeaderFrom$Value",
        &[("fields", "a"), ("headers", "n"), ("operation", "cut")]
    )
    .starts_with("Invalid value cut for configuration operation"));
}

#[test]
fn insert_uuid() {
    let t = transformation_for_class(
        "com.github.cjmatta.kafka.connect.smt.InsertUuid$Value",
        &props(&[("uuid.field.name", "uid")]),
    )
    .unwrap();
    let r = apply(t.as_ref(), with_schema());
    match r.value.get("uid") {
        Some(Value::String(u)) => assert_eq!(u.len(), 36),
        other => panic!("{other:?}"),
    }
    let r = apply(t.as_ref(), schemaless());
    assert!(matches!(r.value.get("uid"), Some(Value::String(_))));
}

#[test]
fn predicates_test_records() {
    let p = predicate_for_class(
        &format!("{T}predicates.TopicNameMatches"),
        &props(&[("pattern", "ord.*")]),
    )
    .unwrap();
    assert!(p.test(&schemaless()).unwrap());
    assert!(!p
        .test(&ConnectRecord::new("xorders", None, Value::Null))
        .unwrap());
    let h = predicate_for_class(
        &format!("{T}predicates.HasHeaderKey"),
        &props(&[("name", "h")]),
    )
    .unwrap();
    let mut r = schemaless();
    assert!(!h.test(&r).unwrap());
    r.headers.push(Header {
        key: "h".into(),
        schema: None,
        value: Value::Null,
    });
    assert!(h.test(&r).unwrap());
    let t =
        predicate_for_class(&format!("{T}predicates.RecordIsTombstone"), &Props::new()).unwrap();
    assert!(t.test(&ConnectRecord::new("t", None, Value::Null)).unwrap());
    assert!(
        predicate_for_class(&format!("{T}predicates.TopicNameMatches"), &Props::new())
            .unwrap_err()
            .to_string()
            .contains("\"pattern\"")
    );
}

fn chain(pairs: &[(&str, &str)]) -> Result<TransformationChain, TransformError> {
    TransformationChain::from_connector_config(&props(pairs))
}

#[test]
fn chain_applies_in_order_with_predicates_and_negate() {
    let c = chain(&[
        ("transforms", "drop, route"),
        ("transforms.drop.type", &format!("{T}Filter")),
        ("transforms.drop.predicate", "isTomb"),
        ("transforms.route.type", &format!("{T}RegexRouter")),
        ("transforms.route.regex", "orders"),
        ("transforms.route.replacement", "o2"),
        ("transforms.route.predicate", "isTomb"),
        ("transforms.route.negate", "true"),
        ("predicates", "isTomb"),
        (
            "predicates.isTomb.type",
            &format!("{T}predicates.RecordIsTombstone"),
        ),
    ])
    .unwrap();
    assert_eq!(c.stages().len(), 2);
    assert_eq!(
        c.apply(ConnectRecord::new("orders", None, Value::Null))
            .unwrap(),
        None
    );
    assert_eq!(c.apply(schemaless()).unwrap().unwrap().topic, "o2");
    assert!(chain(&[]).unwrap().is_empty());
}

#[test]
fn chain_config_errors() {
    let filter = format!("{T}Filter");
    assert_eq!(
        chain(&[("transforms", "a,a"), ("transforms.a.type", &filter)])
            .unwrap_err()
            .to_string(),
        "Invalid value a,a for configuration transforms: Duplicate alias provided."
    );
    assert_eq!(
        chain(&[("transforms", "a")]).unwrap_err().to_string(),
        "Missing required configuration \"transforms.a.type\" which has no default value."
    );
    assert_eq!(
        chain(&[("transforms", "a"), ("transforms.a.type", &filter), ("transforms.a.negate", "true")])
            .unwrap_err()
            .to_string(),
        "Config 'transforms.a.negate' was provided but there is no config 'transforms.a.predicate' defining a predicate to be negated."
    );
    let e = chain(&[("transforms", "a"), ("transforms.a.type", "x.Y")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "Invalid value x.Y for configuration transforms.a.type: Class x.Y could not be found."
        ),
        "{e}"
    );
    assert_eq!(
        chain(&[
            ("transforms", "a"),
            ("transforms.a.type", &filter),
            ("transforms.a.predicate", "p")
        ])
        .unwrap_err()
        .to_string(),
        "Unknown configuration 'predicates.p.type'"
    );
    let e = chain(&[
        ("transforms", "a"),
        ("transforms.a.type", &filter),
        ("transforms.a.predicate", "p"),
        ("transforms.a.negate", "yes"),
        ("predicates", "p"),
        (
            "predicates.p.type",
            &format!("{T}predicates.RecordIsTombstone"),
        ),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(e, "Invalid value yes for configuration transforms.a.negate: Expected value to be either true or false");
    let e = chain(&[
        ("transforms", "a"),
        ("transforms.a.type", &format!("{T}ExtractField$Value")),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"field\""), "{e}");
}

fn envelope(op: &str, before: Option<Value>, after: Option<Value>) -> ConnectRecord {
    let source = SchemaBuilder::struct_builder()
        .field("table", Schema::primitive(Type::String, false))
        .unwrap()
        .build();
    let row = SchemaBuilder::struct_builder()
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .optional()
        .build();
    let schema = SchemaBuilder::struct_builder()
        .name("db.t.Envelope")
        .field("before", row.clone())
        .unwrap()
        .field("after", row.clone())
        .unwrap()
        .field("source", source.clone())
        .unwrap()
        .field("op", Schema::primitive(Type::String, false))
        .unwrap()
        .field("ts_ms", Schema::primitive(Type::Int64, true))
        .unwrap()
        .build();
    let mk = |id: Value| Value::Struct(Struct::new(row.clone()).unwrap().with("id", id).unwrap());
    let value = Struct::new(schema.clone())
        .unwrap()
        .with("before", before.map(mk).unwrap_or(Value::Null))
        .unwrap()
        .with("after", after.map(mk).unwrap_or(Value::Null))
        .unwrap()
        .with(
            "source",
            Value::Struct(Struct::new(source).unwrap().with("table", s("t")).unwrap()),
        )
        .unwrap()
        .with("op", s(op))
        .unwrap()
        .with("ts_ms", Value::Int64(9))
        .unwrap();
    ConnectRecord::new("db.t", Some(schema), Value::Struct(value))
}

#[test]
fn debezium_extract_new_record_state() {
    let class = "io.debezium.transforms.ExtractNewRecordState";
    let plain = transformation_for_class(class, &Props::new()).unwrap();
    let r = apply(plain.as_ref(), envelope("c", None, Some(Value::Int64(1))));
    assert_eq!(r.value.get("id"), Some(&Value::Int64(1)));
    assert_eq!(
        plain
            .apply(envelope("d", Some(Value::Int64(1)), None))
            .unwrap(),
        None
    );
    assert_eq!(
        plain
            .apply(ConnectRecord::new("t", None, Value::Null))
            .unwrap(),
        None
    );

    let rw = transformation_for_class(
        class,
        &props(&[
            ("delete.handling.mode", "rewrite"),
            ("add.fields", "op,table,source.table"),
            ("drop.tombstones", "false"),
        ]),
    )
    .unwrap();
    let r = apply(rw.as_ref(), envelope("d", Some(Value::Int64(2)), None));
    assert_eq!(r.value.get("id"), Some(&Value::Int64(2)));
    assert_eq!(r.value.get("__deleted"), Some(&s("true")));
    assert_eq!(r.value.get("__op"), Some(&s("d")));
    assert_eq!(r.value.get("__table"), Some(&s("t")));
    assert_eq!(r.value.get("__source_table"), Some(&s("t")));
    let r = apply(rw.as_ref(), envelope("u", None, Some(Value::Int64(3))));
    assert_eq!(r.value.get("__deleted"), Some(&s("false")));
    let tomb = ConnectRecord::new("t", None, Value::Null);
    assert_eq!(apply(rw.as_ref(), tomb.clone()), tomb);

    let none =
        transformation_for_class(class, &props(&[("delete.handling.mode", "none")])).unwrap();
    assert_eq!(
        apply(none.as_ref(), envelope("d", Some(Value::Int64(2)), None)).value,
        Value::Null
    );

    // Schemaless envelopes.
    let v = map(&[("op", s("c")), ("after", map(&[("id", Value::Int64(5))]))]);
    let r = apply(rw.as_ref(), ConnectRecord::new("t", None, v));
    assert_eq!(
        r.value,
        map(&[
            ("id", Value::Int64(5)),
            ("__op", s("c")),
            ("__table", Value::Null),
            ("__source_table", Value::Null),
            ("__deleted", s("false"))
        ])
    );
    assert!(transformation_for_class(class, &props(&[("delete.handling.mode", "x")])).is_err());
}

#[test]
fn no_transform_panics_on_odd_records() {
    let odd = [
        ConnectRecord::new("t", None, Value::Null),
        ConnectRecord::new("t", None, Value::Int32(1)),
        ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::Int32, false)),
            Value::Int32(1),
        ),
        ConnectRecord::new("t", Some(person_schema()), Value::Null),
        ConnectRecord::new("t", Some(person_schema()), s("x")),
    ];
    let nested = SchemaBuilder::struct_builder()
        .field("id", Schema::primitive(Type::Int64, true))
        .unwrap()
        .field("p", person_schema())
        .unwrap()
        .build();
    let mut odd = odd.to_vec();
    odd.extend([
        ConnectRecord::new(
            "t",
            Some(nested.clone()),
            Value::Struct(Struct::new(nested).unwrap()),
        ),
        ConnectRecord::new("t", None, map(&[("id", Value::Decimal(5))])),
        ConnectRecord::new("t", None, map(&[("id", s("2020-13-45"))])),
        ConnectRecord::new("t", None, map(&[("id", map(&[("x", person())]))])),
        ConnectRecord::new("t", None, Value::Timestamp(i64::MIN)),
        ConnectRecord::new("t", None, Value::Int64(i64::MAX)),
        ConnectRecord::new("t", None, Value::Map(vec![(Value::Int8(1), Value::Null)])),
        ConnectRecord::new(
            "t",
            Some(SchemaBuilder::timestamp().build()),
            Value::Timestamp(i64::MAX),
        ),
        ConnectRecord::new(
            "t",
            Some(SchemaBuilder::decimal(-40).build()),
            Value::Decimal(i128::MIN),
        ),
    ]);
    let configs: Vec<(String, Props)> = known_transformations()
        .into_iter()
        .map(|c| {
            let p = props(&[
                ("field", "id"),
                ("fields", "id"),
                ("headers", "id"),
                ("operation", "copy"),
                ("topic.field", "t"),
                ("schema.name", "n"),
                ("regex", ".*"),
                ("replacement", "x"),
                ("header", "h"),
                ("value.literal", "v"),
                ("spec", "id:string"),
                ("target.type", "string"),
                ("format", "yyyy-MM-dd"),
            ]);
            (c, p)
        })
        .collect();
    for (class, p) in configs {
        let t = transformation_for_class(&class, &p).unwrap_or_else(|e| panic!("{class}: {e}"));
        for r in &odd {
            let _ = t.apply(r.clone());
        }
    }
}

fn ts_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("Event")
        .field("id", Schema::primitive(Type::Int32, false))
        .unwrap()
        .field("at", SchemaBuilder::timestamp().optional().build())
        .unwrap()
        .build()
}

fn event(at: Value) -> ConnectRecord {
    let v = Struct::new(ts_schema())
        .unwrap()
        .with("id", Value::Int32(1))
        .unwrap()
        .with("at", at)
        .unwrap();
    ConnectRecord::new("events", Some(ts_schema()), Value::Struct(v))
}

#[test]
fn flatten_with_schema() {
    let address = SchemaBuilder::struct_builder()
        .field("city", Schema::primitive(Type::String, false))
        .unwrap()
        .field(
            "zip",
            SchemaBuilder::new(Type::String)
                .default_value(s("00000"))
                .unwrap()
                .build(),
        )
        .unwrap()
        .optional()
        .build();
    let schema = SchemaBuilder::struct_builder()
        .name("Customer")
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .field("home", address.clone())
        .unwrap()
        .field(
            "tags",
            SchemaBuilder::array(Schema::primitive(Type::String, false)).build(),
        )
        .unwrap()
        .build();
    let home = Struct::new(address)
        .unwrap()
        .with("city", s("Prague"))
        .unwrap();
    let value = Struct::new(schema.clone())
        .unwrap()
        .with("id", Value::Int64(1))
        .unwrap()
        .with("home", Value::Struct(home))
        .unwrap()
        .with("tags", Value::Array(vec![s("a")]))
        .unwrap();
    let t = make("Flatten$Value", &[("delimiter", "_")]);
    let r = apply(
        t.as_ref(),
        ConnectRecord::new("c", Some(schema.clone()), Value::Struct(value.clone())),
    );
    let out = r.value_schema.clone().unwrap();
    let names: Vec<_> = out.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "home_city", "home_zip", "tags"]);
    assert_eq!(out.name.as_deref(), Some("Customer"));
    // Under an optional parent every field becomes optional; defaults are kept.
    let city = &out.field("home_city").unwrap().schema;
    assert!(city.optional);
    let zip = &out.field("home_zip").unwrap().schema;
    assert_eq!(zip.default, Some(s("00000")));
    assert!(!out.field("id").unwrap().schema.optional);
    assert_eq!(
        out.field("tags")
            .unwrap()
            .schema
            .value_schema
            .as_ref()
            .unwrap()
            .schema_type,
        Type::String
    );
    assert_eq!(r.value.get("home_city"), Some(&s("Prague")));
    assert_eq!(r.value.get("home_zip"), Some(&s("00000")));
    assert_eq!(r.value.get("tags"), Some(&Value::Array(vec![s("a")])));
    // A null nested struct leaves its fields null.
    let mut no_home = value.clone();
    no_home.put("home", Value::Null).unwrap();
    let r = apply(
        t.as_ref(),
        ConnectRecord::new("c", Some(schema.clone()), Value::Struct(no_home)),
    );
    match &r.value {
        Value::Struct(v) => assert_eq!(v.get_without_default("home_city"), Some(&Value::Null)),
        other => panic!("{other:?}"),
    }
    // Key variant, default delimiter.
    let k = make("Flatten$Key", &[]);
    let mut rec = ConnectRecord::new("c", None, Value::Null);
    rec.key_schema = Some(schema);
    rec.key = Value::Struct(value);
    assert_eq!(
        apply(k.as_ref(), rec).key.get("home.city"),
        Some(&s("Prague"))
    );
    // Maps are not flattened with a schema.
    let with_map = SchemaBuilder::struct_builder()
        .field(
            "m",
            SchemaBuilder::map(
                Schema::primitive(Type::String, false),
                Schema::primitive(Type::String, false),
            )
            .build(),
        )
        .unwrap()
        .build();
    let v = Struct::new(with_map.clone())
        .unwrap()
        .with("m", Value::Map(vec![]))
        .unwrap();
    assert_eq!(
        k.apply({
            let mut r = ConnectRecord::new("c", None, Value::Null);
            r.key_schema = Some(with_map);
            r.key = Value::Struct(v);
            r
        })
        .unwrap_err()
        .to_string(),
        "Flatten transformation does not support MAP for record with schemas (for field m)."
    );
    assert_eq!(
        t.apply(ConnectRecord::new("c", Some(person_schema()), s("x")))
            .unwrap_err()
            .to_string(),
        "Only Struct objects supported for [flattening], found: java.lang.String"
    );
    // Tombstones pass untouched.
    let tomb = ConnectRecord::new("c", Some(person_schema()), Value::Null);
    assert_eq!(apply(t.as_ref(), tomb.clone()), tomb);
}

#[test]
fn flatten_without_schema() {
    let t = make("Flatten$Value", &[]);
    let v = map(&[
        ("a", Value::Int8(1)),
        (
            "b",
            map(&[("c", s("x")), ("d", map(&[("e", Value::Null)]))]),
        ),
        ("f", Value::Array(vec![map(&[("g", Value::Int8(2))])])),
    ]);
    let r = apply(t.as_ref(), ConnectRecord::new("t", None, v));
    assert_eq!(
        r.value,
        map(&[
            ("a", Value::Int8(1)),
            ("b.c", s("x")),
            ("b.d.e", Value::Null),
            ("f", Value::Array(vec![map(&[("g", Value::Int8(2))])])),
        ])
    );
    let e = t
        .apply(ConnectRecord::new("t", None, map(&[("a", person())])))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "Flatten transformation does not support class org.apache.kafka.connect.data.Struct for record without schemas (for field a).");
    assert_eq!(
        t.apply(ConnectRecord::new("t", None, Value::Int8(1)))
            .unwrap_err()
            .to_string(),
        "Only Map objects supported in absence of schema for [flattening], found: java.lang.Byte"
    );
}

#[test]
fn cast_config_errors() {
    assert_eq!(
        err("Cast$Value", &[]),
        "Missing required configuration \"spec\" which has no default value."
    );
    assert_eq!(
        err("Cast$Value", &[("spec", " ")]),
        "Must specify at least one field to cast."
    );
    assert_eq!(
        err("Cast$Value", &[("spec", "a:int8,b:bytes")]),
        "Cast transformation does not support casting to BYTES; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]"
    );
    assert_eq!(
        err("Cast$Value", &[("spec", "a:nope")]),
        "Invalid type found in casting spec: nope"
    );
    assert_eq!(
        err("Cast$Key", &[("spec", "a:b:c")]),
        "Invalid value [a:b:c] for configuration renames: Invalid rename mapping: a:b:c"
    );
    assert_eq!(
        err("Cast$Key", &[("spec", "int8,a:int16")]),
        "Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec"
    );
    assert!(err(
        "Cast$Key",
        &[("spec", "int8"), ("replace.null.with.default", "x")]
    )
    .contains("replace.null.with.default"));
}

#[test]
fn cast_with_schema() {
    let dec = SchemaBuilder::decimal(2).build();
    let schema = SchemaBuilder::struct_builder()
        .name("Row")
        .field("i", Schema::primitive(Type::Int32, false))
        .unwrap()
        .field(
            "f",
            SchemaBuilder::new(Type::Float64)
                .optional()
                .default_value(Value::Float64(2.5))
                .unwrap()
                .build(),
        )
        .unwrap()
        .field("d", dec)
        .unwrap()
        .field("b", Schema::primitive(Type::Bytes, false))
        .unwrap()
        .field("ts", SchemaBuilder::timestamp().build())
        .unwrap()
        .field("day", SchemaBuilder::date().build())
        .unwrap()
        .field("keep", Schema::primitive(Type::String, true))
        .unwrap()
        .build();
    let value = Struct::new(schema.clone())
        .unwrap()
        .with("i", Value::Int32(300))
        .unwrap()
        .with("d", Value::Decimal(-12_345))
        .unwrap()
        .with("b", Value::Bytes(b"hi".to_vec()))
        .unwrap()
        .with("ts", Value::Timestamp(86_400_123))
        .unwrap()
        .with("day", Value::Date(2))
        .unwrap()
        .with("keep", s("k"))
        .unwrap();
    let rec = ConnectRecord::new("t", Some(schema.clone()), Value::Struct(value));
    let t = make(
        "Cast$Value",
        &[(
            "spec",
            "i:int8, f:string, d:int64, b:string, ts:string, day:int32",
        )],
    );
    let r = apply(t.as_ref(), rec.clone());
    let out = r.value_schema.clone().unwrap();
    assert_eq!(out.name.as_deref(), Some("Row"));
    assert_eq!(out.field("i").unwrap().schema.schema_type, Type::Int8);
    let f = &out.field("f").unwrap().schema;
    assert!(f.optional);
    assert_eq!(f.default, Some(s("2.5")), "the default is cast too");
    assert_eq!(out.field("day").unwrap().schema.name, None);
    assert_eq!(r.value.get("i"), Some(&Value::Int8(44)));
    assert_eq!(r.value.get("f"), Some(&s("2.5")));
    assert_eq!(r.value.get("d"), Some(&Value::Int64(-123)));
    assert_eq!(r.value.get("b"), Some(&s("aGk=")));
    assert_eq!(r.value.get("ts"), Some(&s("1970-01-02T00:00:00.123Z")));
    assert_eq!(r.value.get("day"), Some(&Value::Int32(2)));
    assert_eq!(r.value.get("keep"), Some(&s("k")));
    // replace.null.with.default=false keeps the null.
    let t = make(
        "Cast$Value",
        &[("spec", "f:string"), ("replace.null.with.default", "false")],
    );
    match apply(t.as_ref(), rec.clone()).value {
        Value::Struct(v) => assert_eq!(v.get_without_default("f"), Some(&Value::Null)),
        other => panic!("{other:?}"),
    }
    // Decimal to float and boolean; bytes only to string.
    let t = make("Cast$Value", &[("spec", "d:float64")]);
    assert_eq!(
        apply(t.as_ref(), rec.clone()).value.get("d"),
        Some(&Value::Float64(-123.45))
    );
    let t = make("Cast$Value", &[("spec", "b:int32")]);
    assert_eq!(
        t.apply(rec.clone()).unwrap_err().to_string(),
        "Unexpected type in Cast transformation: class [B"
    );
    // Whole value.
    let t = make("Cast$Value", &[("spec", "float32")]);
    let r = apply(
        t.as_ref(),
        ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::String, true)),
            s(" 1.5e1f"),
        ),
    );
    assert_eq!(r.value, Value::Float32(15.0));
    let out = r.value_schema.unwrap();
    assert!(out.optional && out.schema_type == Type::Float32);
    assert_eq!(
        t.apply(rec).unwrap_err().to_string(),
        "Cast transformation does not support casting from STRUCT; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]"
    );
    let t = make("Cast$Value", &[("spec", "int8")]);
    assert_eq!(
        t.apply(ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::String, false)),
            s("300")
        ))
        .unwrap_err()
        .to_string(),
        "Value (300) was out of range for requested data type"
    );
    // A field cast on a non-struct schema.
    let t = make("Cast$Value", &[("spec", "a:int8")]);
    assert!(t
        .apply(ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::Int32, false)),
            Value::Int32(1)
        ))
        .is_err());
}

#[test]
fn cast_without_schema() {
    let t = make(
        "Cast$Value",
        &[("spec", "a:boolean,b:int16,c:float64,z:int8")],
    );
    let v = map(&[
        ("a", s("TRUE")),
        ("b", Value::Float64(-7.9)),
        ("c", Value::Boolean(true)),
        ("x", Value::Int8(1)),
    ]);
    let r = apply(t.as_ref(), ConnectRecord::new("t", None, v));
    assert_eq!(
        r.value,
        map(&[
            ("a", Value::Boolean(true)),
            ("b", Value::Int16(-7)),
            ("c", Value::Float64(1.0)),
            ("x", Value::Int8(1)),
            ("z", Value::Null),
        ])
    );
    let whole = make("Cast$Key", &[("spec", "string")]);
    let mut rec = ConnectRecord::new("t", None, Value::Null);
    rec.key = Value::Float64(1e10);
    assert_eq!(apply(whole.as_ref(), rec).key, s("1.0E10"));
    let e = t
        .apply(ConnectRecord::new(
            "t",
            None,
            map(&[("a", Value::Decimal(1))]),
        ))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "Cast transformation was passed a value of type class java.math.BigDecimal which is not supported by Connect's data API");
    let e = t
        .apply(ConnectRecord::new("t", None, map(&[("a", map(&[]))])))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("Cast transformation does not support casting from MAP"),
        "{e}"
    );
    let tomb = ConnectRecord::new("t", None, Value::Null);
    assert_eq!(apply(t.as_ref(), tomb.clone()), tomb);
}

#[test]
fn timestamp_converter_config_errors() {
    assert_eq!(
        err("TimestampConverter$Value", &[]),
        "Missing required configuration \"target.type\" which has no default value."
    );
    assert_eq!(
        err("TimestampConverter$Value", &[("target.type", "date")]),
        "Invalid value date for configuration target.type: String must be one of: string, unix, Date, Time, Timestamp"
    );
    assert_eq!(
        err("TimestampConverter$Value", &[("target.type", "string")]),
        "TimestampConverter requires format option to be specified when using string timestamps"
    );
    assert!(err(
        "TimestampConverter$Value",
        &[("target.type", "string"), ("format", "yyyy-ww")]
    )
    .starts_with(
        "TimestampConverter requires a SimpleDateFormat-compatible pattern for string timestamps: yyyy-ww"
    ));
    assert_eq!(
        err(
            "TimestampConverter$Value",
            &[("target.type", "unix"), ("unix.precision", "days")]
        ),
        "Invalid value days for configuration unix.precision: String must be one of: nanoseconds, microseconds, milliseconds, seconds"
    );
}

#[test]
fn timestamp_converter_with_schema() {
    let ms = 1_700_000_000_123;
    let t = make(
        "TimestampConverter$Value",
        &[
            ("field", "at"),
            ("target.type", "string"),
            ("format", "yyyy-MM-dd HH:mm:ss.SSS"),
        ],
    );
    let r = apply(t.as_ref(), event(Value::Timestamp(ms)));
    let out = r.value_schema.clone().unwrap();
    assert_eq!(out.name.as_deref(), Some("Event"));
    let at = &out.field("at").unwrap().schema;
    assert!(at.optional && at.schema_type == Type::String && at.name.is_none());
    assert_eq!(r.value.get("at"), Some(&s("2023-11-14 22:13:20.123")));
    assert_eq!(r.value.get("id"), Some(&Value::Int32(1)));
    // Null stays null.
    assert_eq!(
        apply(t.as_ref(), event(Value::Null)).value.get("at"),
        Some(&Value::Null)
    );
    // Back from the string, to a Date and a Time.
    let back = make(
        "TimestampConverter$Value",
        &[
            ("field", "at"),
            ("target.type", "Date"),
            ("format", "yyyy-MM-dd HH:mm:ss.SSS"),
        ],
    );
    let r = apply(back.as_ref(), r);
    assert_eq!(r.value.get("at"), Some(&Value::Date(19_675)));
    assert_eq!(
        r.value_schema
            .unwrap()
            .field("at")
            .unwrap()
            .schema
            .name
            .as_deref(),
        Some(crate::data::DATE)
    );
    let time = make(
        "TimestampConverter$Value",
        &[("field", "at"), ("target.type", "Time")],
    );
    assert_eq!(
        apply(time.as_ref(), event(Value::Timestamp(ms)))
            .value
            .get("at"),
        Some(&Value::Time(80_000_123))
    );
    // Whole value: unix (int64 schema) to Timestamp, in seconds.
    let whole = make(
        "TimestampConverter$Value",
        &[("target.type", "Timestamp"), ("unix.precision", "seconds")],
    );
    let r = apply(
        whole.as_ref(),
        ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::Int64, false)),
            Value::Int64(1_700_000_000),
        ),
    );
    assert_eq!(r.value, Value::Timestamp(1_700_000_000_000));
    assert_eq!(
        r.value_schema.unwrap().name.as_deref(),
        Some(crate::data::TIMESTAMP)
    );
    let e = whole
        .apply(ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::Int32, false)),
            Value::Int32(1),
        ))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Schema Schema{INT32} does not correspond to a known timestamp type format"
    );
    let bad = make(
        "TimestampConverter$Value",
        &[("field", "at"), ("target.type", "unix"), ("format", "yyyy")],
    );
    let string_schema = SchemaBuilder::struct_builder()
        .field("at", Schema::primitive(Type::String, false))
        .unwrap()
        .build();
    let v = Struct::new(string_schema.clone())
        .unwrap()
        .with("at", s("nope"))
        .unwrap();
    assert_eq!(
        bad.apply(ConnectRecord::new(
            "t",
            Some(string_schema),
            Value::Struct(v)
        ))
        .unwrap_err()
        .to_string(),
        "Could not parse timestamp: value (nope) does not match pattern (yyyy)"
    );
}

#[test]
fn timestamp_converter_without_schema() {
    let t = make(
        "TimestampConverter$Value",
        &[
            ("field", "at"),
            ("target.type", "unix"),
            ("unix.precision", "microseconds"),
            ("format", "yyyy-MM-dd'T'HH:mm:ssXXX"),
        ],
    );
    let r = apply(
        t.as_ref(),
        ConnectRecord::new("t", None, map(&[("at", s("1970-01-01T01:00:01+01:00"))])),
    );
    assert_eq!(r.value, map(&[("at", Value::Int64(1_000_000))]));
    let r = apply(
        t.as_ref(),
        ConnectRecord::new("t", None, map(&[("at", Value::Timestamp(5))])),
    );
    assert_eq!(r.value, map(&[("at", Value::Int64(5000))]));
    let r = apply(t.as_ref(), ConnectRecord::new("t", None, map(&[])));
    assert_eq!(r.value, map(&[("at", Value::Null)]));
    assert_eq!(
        t.apply(ConnectRecord::new(
            "t",
            None,
            map(&[("at", Value::Int32(5))])
        ))
        .unwrap_err()
        .to_string(),
        "TimestampConverter does not support class java.lang.Integer objects as timestamps"
    );
    // Whole key, nanoseconds in, string out.
    let k = make(
        "TimestampConverter$Key",
        &[
            ("target.type", "string"),
            ("unix.precision", "nanoseconds"),
            ("format", "dd MMM yyyy"),
        ],
    );
    let mut rec = ConnectRecord::new("t", None, Value::Null);
    rec.key = Value::Int64(86_400_000_000_000);
    assert_eq!(apply(k.as_ref(), rec).key, s("02 Jan 1970"));
    let tomb = apply(k.as_ref(), ConnectRecord::new("t", None, Value::Null));
    assert_eq!(tomb.key, Value::Null);
}

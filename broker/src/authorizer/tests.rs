//! The rules of [`Authorizer::authorize`], each against Kafka's documented behaviour.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission,
    }
}

fn topic_acl(
    name: &str,
    pattern: PatternType,
    who: &str,
    op: Operation,
    p: Permission,
) -> AclBinding {
    acl(ResourceType::Topic, name, pattern, who, op, p)
}

async fn with(acls: Vec<AclBinding>) -> Authorizer {
    let a = Authorizer::in_memory(&["User:admin".to_string()], false);
    a.add(acls).await.unwrap();
    a
}

fn can(a: &Authorizer, who: &str, op: Operation, r: &Resource) -> bool {
    let p: KafkaPrincipal = who.parse().unwrap();
    a.authorize(
        Requester {
            principal: &p,
            host: HOST,
        },
        op,
        r,
    )
}

#[tokio::test]
async fn without_acls_or_secured_listeners_everything_is_allowed() {
    let a = Authorizer::in_memory(&[], false);
    assert!(!a.enabled());
    assert!(can(
        &a,
        "User:ANONYMOUS",
        Operation::Write,
        &Resource::topic("t")
    ));
    a.secure();
    assert!(a.enabled());
    assert!(!can(
        &a,
        "User:ANONYMOUS",
        Operation::Write,
        &Resource::topic("t")
    ));
    let relaxed = Authorizer::in_memory(&[], true);
    relaxed.secure();
    assert!(can(
        &relaxed,
        "User:bob",
        Operation::Write,
        &Resource::topic("t")
    ));
}

#[tokio::test]
async fn literal_prefixed_and_wildcard_patterns() {
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    let a = with(vec![
        topic_acl("orders", Literal, "User:alice", Read, Allow),
        topic_acl("logs-", Prefixed, "User:alice", Write, Allow),
        topic_acl("*", Literal, "User:*", Describe, Allow),
    ])
    .await;
    assert!(a.enabled());
    assert!(can(&a, "User:alice", Read, &Resource::topic("orders")));
    assert!(!can(&a, "User:alice", Read, &Resource::topic("orders2")));
    assert!(can(&a, "User:alice", Write, &Resource::topic("logs-app")));
    assert!(!can(&a, "User:alice", Write, &Resource::topic("log")));
    assert!(can(&a, "User:bob", Describe, &Resource::topic("anything")));
    assert!(!can(&a, "User:bob", Read, &Resource::topic("orders")));
    // A group is not a topic.
    assert!(!can(&a, "User:alice", Read, &Resource::group("orders")));
}

#[tokio::test]
async fn deny_wins_over_allow() {
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    let a = with(vec![
        topic_acl("", Prefixed, "User:alice", All, Allow),
        topic_acl("secret", Literal, "User:alice", Read, Deny),
        topic_acl("*", Literal, "User:*", Write, Deny),
    ])
    .await;
    assert!(can(&a, "User:alice", Read, &Resource::topic("public")));
    assert!(!can(&a, "User:alice", Read, &Resource::topic("secret")));
    assert!(!can(&a, "User:alice", Write, &Resource::topic("public")));
    // DENY READ does not deny DESCRIBE (implication only widens ALLOWs).
    assert!(can(&a, "User:alice", Describe, &Resource::topic("secret")));
}

#[tokio::test]
async fn implied_operations_and_all() {
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    let a = with(vec![
        topic_acl("r", Literal, "User:u", Read, Allow),
        topic_acl("w", Literal, "User:u", Write, Allow),
        topic_acl("d", Literal, "User:u", Delete, Allow),
        topic_acl("a", Literal, "User:u", Alter, Allow),
        topic_acl("c", Literal, "User:u", AlterConfigs, Allow),
        topic_acl("all", Literal, "User:u", All, Allow),
        topic_acl("cr", Literal, "User:u", Create, Allow),
    ])
    .await;
    for t in ["r", "w", "d", "a", "all"] {
        assert!(can(&a, "User:u", Describe, &Resource::topic(t)), "{t}");
    }
    assert!(!can(&a, "User:u", Describe, &Resource::topic("cr")));
    assert!(!can(&a, "User:u", Describe, &Resource::topic("c")));
    assert!(can(&a, "User:u", DescribeConfigs, &Resource::topic("c")));
    assert!(!can(&a, "User:u", DescribeConfigs, &Resource::topic("r")));
    assert!(!can(&a, "User:u", Write, &Resource::topic("r")));
    for op in [
        Read,
        Write,
        Create,
        Delete,
        Alter,
        DescribeConfigs,
        AlterConfigs,
    ] {
        assert!(can(&a, "User:u", op, &Resource::topic("all")), "{op}");
    }
}

#[tokio::test]
async fn super_users_bypass_everything_and_hosts_match() {
    use Operation::*;
    let mut from_elsewhere =
        topic_acl("t", PatternType::Literal, "User:u", Read, Permission::Allow);
    from_elsewhere.host = "10.9.9.9".into();
    let mut from_here = from_elsewhere.clone();
    from_here.resource_name = "h".into();
    from_here.host = HOST.to_string();
    let a = with(vec![
        topic_acl("*", PatternType::Literal, "User:*", All, Permission::Deny),
        from_elsewhere,
        from_here.clone(),
    ])
    .await;
    assert!(can(&a, "User:admin", Write, &Resource::topic("t")));
    assert!(can(&a, "User:admin", Alter, &Resource::cluster()));
    assert!(!can(&a, "User:u", Read, &Resource::topic("t")));
    let a = with(vec![from_here]).await;
    assert!(can(&a, "User:u", Read, &Resource::topic("h")));
    assert_eq!(
        parse_super_users("User:admin; User:CN=broker,O=x;").unwrap(),
        vec!["User:admin".to_string(), "User:CN=broker,O=x".to_string()]
    );
    assert!(parse_super_users("admin").is_err());
}

#[tokio::test]
async fn write_on_any_topic_for_idempotent_producers() {
    use Operation::*;
    let a = with(vec![topic_acl(
        "x-",
        PatternType::Prefixed,
        "User:w",
        Write,
        Permission::Allow,
    )])
    .await;
    let w: KafkaPrincipal = "User:w".parse().unwrap();
    let r: KafkaPrincipal = "User:r".parse().unwrap();
    let req = |p| Requester {
        principal: p,
        host: HOST,
    };
    assert!(a.authorize_any(req(&w), Write, ResourceType::Topic));
    assert!(!a.authorize_any(req(&r), Write, ResourceType::Topic));
}

#[tokio::test]
async fn filters_any_and_match() {
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    let a = with(vec![
        topic_acl("orders", Literal, "User:a", Read, Allow),
        topic_acl("ord", Prefixed, "User:a", Read, Allow),
        topic_acl("*", Literal, "User:b", Read, Deny),
        topic_acl("other", Literal, "User:b", Write, Allow),
        acl(
            ResourceType::Group,
            "orders",
            Literal,
            "User:a",
            Read,
            Allow,
        ),
    ])
    .await;
    assert_eq!(a.describe(&AclFilter::any()).len(), 5);
    let mut f = AclFilter::any();
    f.resource_type = ResourceType::Topic;
    f.resource_name = Some("orders".into());
    f.pattern_type = Match;
    assert_eq!(a.describe(&f).len(), 3);
    f.pattern_type = PatternType::Any;
    assert_eq!(a.describe(&f).len(), 1);
    f.pattern_type = Prefixed;
    assert_eq!(a.describe(&f).len(), 0);
    let mut by_principal = AclFilter::any();
    by_principal.principal = Some("User:b".into());
    by_principal.permission = Deny;
    let removed = a.remove(&by_principal).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(a.describe(&AclFilter::any()).len(), 4);
    assert!(AclBinding::from_wire(1, "t", 3, "User:a", "*", 3, 3).is_err());
    assert!(AclBinding::from_wire(2, "t", 2, "User:a", "*", 3, 3).is_err());
    assert!(AclBinding::from_wire(2, "t", 3, "alice", "*", 3, 3).is_err());
    assert!(AclBinding::from_wire(4, "c", 3, "User:a", "*", 7, 3).is_err());
    assert!(AclBinding::from_wire(2, "t", 3, "User:a", "*", 3, 3).is_ok());
    assert_eq!("describe-configs".parse::<Operation>(), Ok(DescribeConfigs));
    assert_eq!("Read".parse::<Operation>(), Ok(Read));
    assert_eq!("prefixed".parse::<PatternType>(), Ok(Prefixed));
}

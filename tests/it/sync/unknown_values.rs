//! Unknown enum values and fields from the register are counted in the report, not fatal.

use super::*;

// ---------------------------------------------------------------------------------------
// 10. Unknown values and fields are counted, not fatal.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_enum_values_and_fields_are_counted_in_the_report() {
    let app = spawn_app().await;
    let h = uid();
    let unit = uid();
    let (s1, s2, staff) = (uid(), uid(), uid());
    let mut a = student(&s1, "elev1", "Ek", &unit, &[]);
    a["sex"] = json!("Annat");
    a["favouriteColour"] = json!("grön");
    a["enrolments"][0]["lunchTime"] = json!("11:30");
    let mut b = student(&s2, "elev2", "Ek", &unit, &[]);
    b["sex"] = json!("Annat");
    let c = person(&staff, "Vakt", "Mästare", "vakt", &civic("19700101", 777));
    let mut d = duty(&uid(), &staff, &unit, "Vaktmästare");
    d["shoeSize"] = json!(44);
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&unit, "Ekskolan", "11111111", &h),
        ],
        &[a, b, c],
        &[group(
            &uid(),
            "Fotboll",
            "Idrottsgrupp",
            &unit,
            &[s1.as_str(), s2.as_str()],
        )],
        &[d],
    )
    .unwrap();
    let reg = Register::start(data).await;
    let out = reg.sync_ok(&app, &["--full"]);
    assert!(out.contains("Person.sex=Annat"), "{out}");
    let run = last_run(&app);
    assert_eq!(run["status"], "applied", "{run}");
    let r = &run["report"];
    assert_eq!(r["unknown_values"]["Person.sex=Annat"], 2, "{r}");
    assert_eq!(r["unknown_values"]["Duty.dutyRole=Vaktmästare"], 1, "{r}");
    assert_eq!(
        r["unknown_values"]["Group.groupType=Idrottsgrupp"], 1,
        "{r}"
    );
    assert_eq!(r["unknown_fields"]["Person.favouriteColour"], 1, "{r}");
    assert_eq!(r["unknown_fields"]["Person.enrolments.lunchTime"], 1, "{r}");
    assert_eq!(r["unknown_fields"]["Duty.shoeSize"], 1, "{r}");
    assert_eq!(run["counts"]["persons_created"], 3);

    // The records were used anyway.
    let elev = show(&app, "elev1");
    assert_eq!(strings(&elev["roles"]), ["student@11111111"]);
    assert_eq!(group_names(&elev), ["Fotboll"]);
    assert_eq!(strings(&show(&app, "vakt")["roles"]), ["staff@11111111"]);
}

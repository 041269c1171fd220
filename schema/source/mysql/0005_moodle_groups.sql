-- Course groups and their members, as Moodle keeps them: the course page's group filter reads
-- them (docs/console.md). Moodle's columns and indexes, under its index names.
CREATE TABLE {prefix}groups (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    courseid BIGINT NOT NULL,
    idnumber VARCHAR(100) NOT NULL DEFAULT '',
    name VARCHAR(254) NOT NULL DEFAULT '',
    description LONGTEXT,
    descriptionformat SMALLINT NOT NULL DEFAULT 0,
    enrolmentkey VARCHAR(50),
    picture BIGINT NOT NULL DEFAULT 0,
    visibility SMALLINT NOT NULL DEFAULT 0,
    participation SMALLINT NOT NULL DEFAULT 1,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:grou_idn} ON {prefix}groups (idnumber);
CREATE INDEX {ix:grou_cou} ON {prefix}groups (courseid);
CREATE TABLE {prefix}groups_members (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    groupid BIGINT NOT NULL DEFAULT 0,
    userid BIGINT NOT NULL DEFAULT 0,
    timeadded BIGINT NOT NULL DEFAULT 0,
    component VARCHAR(100) NOT NULL DEFAULT '',
    itemid BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:groumemb_usegro} ON {prefix}groups_members (userid, groupid);
CREATE INDEX {ix:groumemb_gro} ON {prefix}groups_members (groupid);
CREATE INDEX {ix:groumemb_use} ON {prefix}groups_members (userid);

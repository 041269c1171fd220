-- Moodle core tables that usestats reads, as Moodle's XMLDB lays them out on PostgreSQL:
-- int(10) -> BIGINT, int(1..4) -> SMALLINT, char(n) -> VARCHAR(n), number(10,5) -> NUMERIC(10,5).
-- Only the columns that usestats or the demo site use are present; everything else Moodle has is
-- left out because nothing here writes into a real Moodle database.

CREATE TABLE {prefix}config (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL DEFAULT '',
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX {prefix}conf_nam_uix ON {prefix}config (name);

CREATE TABLE {prefix}mnet_host (
    id BIGSERIAL PRIMARY KEY,
    deleted SMALLINT NOT NULL DEFAULT 0,
    wwwroot VARCHAR(255) NOT NULL DEFAULT '',
    ip_address VARCHAR(45) NOT NULL DEFAULT '',
    name VARCHAR(80) NOT NULL DEFAULT '',
    public_key TEXT NOT NULL DEFAULT '',
    public_key_expires BIGINT NOT NULL DEFAULT 0,
    transport SMALLINT NOT NULL DEFAULT 0,
    portno INTEGER NOT NULL DEFAULT 0,
    last_connect_time BIGINT NOT NULL DEFAULT 0,
    last_log_id BIGINT NOT NULL DEFAULT 0,
    applicationid BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE {prefix}user (
    id BIGSERIAL PRIMARY KEY,
    auth VARCHAR(20) NOT NULL DEFAULT 'manual',
    confirmed SMALLINT NOT NULL DEFAULT 0,
    deleted SMALLINT NOT NULL DEFAULT 0,
    suspended SMALLINT NOT NULL DEFAULT 0,
    mnethostid BIGINT NOT NULL DEFAULT 0,
    username VARCHAR(100) NOT NULL DEFAULT '',
    password VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(255) NOT NULL DEFAULT '',
    firstname VARCHAR(100) NOT NULL DEFAULT '',
    lastname VARCHAR(100) NOT NULL DEFAULT '',
    email VARCHAR(100) NOT NULL DEFAULT '',
    lang VARCHAR(30) NOT NULL DEFAULT 'en',
    timezone VARCHAR(100) NOT NULL DEFAULT '99',
    firstaccess BIGINT NOT NULL DEFAULT 0,
    lastaccess BIGINT NOT NULL DEFAULT 0,
    lastlogin BIGINT NOT NULL DEFAULT 0,
    currentlogin BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}user_mneuse_uix ON {prefix}user (mnethostid, username);
CREATE INDEX {prefix}user_idn_ix ON {prefix}user (idnumber);
CREATE INDEX {prefix}user_ema_ix ON {prefix}user (email);

CREATE TABLE {prefix}course (
    id BIGSERIAL PRIMARY KEY,
    category BIGINT NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL DEFAULT 0,
    fullname VARCHAR(254) NOT NULL DEFAULT '',
    shortname VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(100) NOT NULL DEFAULT '',
    format VARCHAR(21) NOT NULL DEFAULT 'topics',
    startdate BIGINT NOT NULL DEFAULT 0,
    enddate BIGINT NOT NULL DEFAULT 0,
    visible SMALLINT NOT NULL DEFAULT 1,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}cour_cat_ix ON {prefix}course (category);
CREATE INDEX {prefix}cour_idn_ix ON {prefix}course (idnumber);
CREATE INDEX {prefix}cour_sho_ix ON {prefix}course (shortname);

CREATE TABLE {prefix}course_sections (
    id BIGSERIAL PRIMARY KEY,
    course BIGINT NOT NULL DEFAULT 0,
    section BIGINT NOT NULL DEFAULT 0,
    name VARCHAR(255),
    sequence TEXT,
    visible SMALLINT NOT NULL DEFAULT 1,
    timemodified BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}coursect_cousec_uix ON {prefix}course_sections (course, section);

CREATE TABLE {prefix}modules (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(20) NOT NULL DEFAULT '',
    visible SMALLINT NOT NULL DEFAULT 1
);
CREATE INDEX {prefix}modu_nam_ix ON {prefix}modules (name);

CREATE TABLE {prefix}course_modules (
    id BIGSERIAL PRIMARY KEY,
    course BIGINT NOT NULL DEFAULT 0,
    module BIGINT NOT NULL DEFAULT 0,
    instance BIGINT NOT NULL DEFAULT 0,
    section BIGINT NOT NULL DEFAULT 0,
    idnumber VARCHAR(100),
    added BIGINT NOT NULL DEFAULT 0,
    visible SMALLINT NOT NULL DEFAULT 1,
    deletioninprogress SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}courmodu_cou_ix ON {prefix}course_modules (course);
CREATE INDEX {prefix}courmodu_modins_ix ON {prefix}course_modules (module, instance);

CREATE TABLE {prefix}context (
    id BIGSERIAL PRIMARY KEY,
    contextlevel BIGINT NOT NULL DEFAULT 0,
    instanceid BIGINT NOT NULL DEFAULT 0,
    path VARCHAR(255),
    depth SMALLINT NOT NULL DEFAULT 0,
    locked SMALLINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}cont_conins_uix ON {prefix}context (contextlevel, instanceid);

CREATE TABLE {prefix}enrol (
    id BIGSERIAL PRIMARY KEY,
    enrol VARCHAR(20) NOT NULL DEFAULT '',
    status BIGINT NOT NULL DEFAULT 0,
    courseid BIGINT NOT NULL,
    sortorder BIGINT NOT NULL DEFAULT 0,
    roleid BIGINT DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}enro_cou_ix ON {prefix}enrol (courseid);

CREATE TABLE {prefix}user_enrolments (
    id BIGSERIAL PRIMARY KEY,
    status BIGINT NOT NULL DEFAULT 0,
    enrolid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    timestart BIGINT NOT NULL DEFAULT 0,
    timeend BIGINT NOT NULL DEFAULT 2147483647,
    modifierid BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}userenro_enruse_uix ON {prefix}user_enrolments (enrolid, userid);
CREATE INDEX {prefix}userenro_use_ix ON {prefix}user_enrolments (userid);

CREATE TABLE {prefix}grade_items (
    id BIGSERIAL PRIMARY KEY,
    courseid BIGINT,
    categoryid BIGINT,
    itemname VARCHAR(255),
    itemtype VARCHAR(30) NOT NULL DEFAULT '',
    itemmodule VARCHAR(30),
    iteminstance BIGINT,
    grademax NUMERIC(10,5) NOT NULL DEFAULT 100,
    grademin NUMERIC(10,5) NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT,
    timemodified BIGINT
);
CREATE INDEX {prefix}gradite_cou_ix ON {prefix}grade_items (courseid);

CREATE TABLE {prefix}grade_grades (
    id BIGSERIAL PRIMARY KEY,
    itemid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    rawgrade NUMERIC(10,5),
    rawgrademax NUMERIC(10,5) NOT NULL DEFAULT 100,
    rawgrademin NUMERIC(10,5) NOT NULL DEFAULT 0,
    finalgrade NUMERIC(10,5),
    timecreated BIGINT,
    timemodified BIGINT
);
CREATE UNIQUE INDEX {prefix}gradgrad_useite_uix ON {prefix}grade_grades (userid, itemid);
CREATE INDEX {prefix}gradgrad_ite_ix ON {prefix}grade_grades (itemid);

CREATE TABLE {prefix}logstore_standard_log (
    id BIGSERIAL PRIMARY KEY,
    eventname VARCHAR(255) NOT NULL DEFAULT '',
    component VARCHAR(100) NOT NULL DEFAULT '',
    action VARCHAR(100) NOT NULL DEFAULT '',
    target VARCHAR(100) NOT NULL DEFAULT '',
    objecttable VARCHAR(50),
    objectid BIGINT,
    crud VARCHAR(1) NOT NULL DEFAULT '',
    edulevel SMALLINT NOT NULL,
    contextid BIGINT NOT NULL,
    contextlevel BIGINT NOT NULL,
    contextinstanceid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    courseid BIGINT,
    relateduserid BIGINT,
    anonymous SMALLINT NOT NULL DEFAULT 0,
    other TEXT,
    timecreated BIGINT NOT NULL,
    origin VARCHAR(10),
    ip VARCHAR(45),
    realuserid BIGINT
);

-- Module instance tables of the module types the demo site uses. Real Moodle tables have many more
-- columns; usestats only reads the instance name.
CREATE TABLE {prefix}assign (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}forum (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}learningtimecheck (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}page (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}quiz (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}resource (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}url (id BIGSERIAL PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');

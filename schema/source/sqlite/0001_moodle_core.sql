-- Moodle core tables that usestats reads, in SQLite form: every integer column is INTEGER (id is
-- the rowid alias), char(n) stays VARCHAR(n) (TEXT affinity), number(10,5) is NUMERIC(10,5) and
-- is read back as REAL and printed with five decimals, as Moodle prints it.
-- Only the columns that usestats or the demo site use are present; everything else Moodle has is
-- left out because nothing here writes into a real Moodle database.

CREATE TABLE {prefix}config (
    id INTEGER PRIMARY KEY,
    name VARCHAR(255) NOT NULL DEFAULT '',
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX {prefix}conf_nam_uix ON {prefix}config (name);

CREATE TABLE {prefix}mnet_host (
    id INTEGER PRIMARY KEY,
    deleted INTEGER NOT NULL DEFAULT 0,
    wwwroot VARCHAR(255) NOT NULL DEFAULT '',
    ip_address VARCHAR(45) NOT NULL DEFAULT '',
    name VARCHAR(80) NOT NULL DEFAULT '',
    public_key TEXT NOT NULL DEFAULT '',
    public_key_expires INTEGER NOT NULL DEFAULT 0,
    transport INTEGER NOT NULL DEFAULT 0,
    portno INTEGER NOT NULL DEFAULT 0,
    last_connect_time INTEGER NOT NULL DEFAULT 0,
    last_log_id INTEGER NOT NULL DEFAULT 0,
    applicationid INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE {prefix}user (
    id INTEGER PRIMARY KEY,
    auth VARCHAR(20) NOT NULL DEFAULT 'manual',
    confirmed INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0,
    mnethostid INTEGER NOT NULL DEFAULT 0,
    username VARCHAR(100) NOT NULL DEFAULT '',
    password VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(255) NOT NULL DEFAULT '',
    firstname VARCHAR(100) NOT NULL DEFAULT '',
    lastname VARCHAR(100) NOT NULL DEFAULT '',
    email VARCHAR(100) NOT NULL DEFAULT '',
    lang VARCHAR(30) NOT NULL DEFAULT 'en',
    timezone VARCHAR(100) NOT NULL DEFAULT '99',
    firstaccess INTEGER NOT NULL DEFAULT 0,
    lastaccess INTEGER NOT NULL DEFAULT 0,
    lastlogin INTEGER NOT NULL DEFAULT 0,
    currentlogin INTEGER NOT NULL DEFAULT 0,
    timecreated INTEGER NOT NULL DEFAULT 0,
    timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}user_mneuse_uix ON {prefix}user (mnethostid, username);
CREATE INDEX {prefix}user_idn_ix ON {prefix}user (idnumber);
CREATE INDEX {prefix}user_ema_ix ON {prefix}user (email);

CREATE TABLE {prefix}course (
    id INTEGER PRIMARY KEY,
    category INTEGER NOT NULL DEFAULT 0,
    sortorder INTEGER NOT NULL DEFAULT 0,
    fullname VARCHAR(254) NOT NULL DEFAULT '',
    shortname VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(100) NOT NULL DEFAULT '',
    format VARCHAR(21) NOT NULL DEFAULT 'topics',
    startdate INTEGER NOT NULL DEFAULT 0,
    enddate INTEGER NOT NULL DEFAULT 0,
    visible INTEGER NOT NULL DEFAULT 1,
    timecreated INTEGER NOT NULL DEFAULT 0,
    timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}cour_cat_ix ON {prefix}course (category);
CREATE INDEX {prefix}cour_idn_ix ON {prefix}course (idnumber);
CREATE INDEX {prefix}cour_sho_ix ON {prefix}course (shortname);

CREATE TABLE {prefix}course_sections (
    id INTEGER PRIMARY KEY,
    course INTEGER NOT NULL DEFAULT 0,
    section INTEGER NOT NULL DEFAULT 0,
    name VARCHAR(255),
    sequence TEXT,
    visible INTEGER NOT NULL DEFAULT 1,
    timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}coursect_cousec_uix ON {prefix}course_sections (course, section);

CREATE TABLE {prefix}modules (
    id INTEGER PRIMARY KEY,
    name VARCHAR(20) NOT NULL DEFAULT '',
    visible INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX {prefix}modu_nam_ix ON {prefix}modules (name);

CREATE TABLE {prefix}course_modules (
    id INTEGER PRIMARY KEY,
    course INTEGER NOT NULL DEFAULT 0,
    module INTEGER NOT NULL DEFAULT 0,
    instance INTEGER NOT NULL DEFAULT 0,
    section INTEGER NOT NULL DEFAULT 0,
    idnumber VARCHAR(100),
    added INTEGER NOT NULL DEFAULT 0,
    visible INTEGER NOT NULL DEFAULT 1,
    deletioninprogress INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}courmodu_cou_ix ON {prefix}course_modules (course);
CREATE INDEX {prefix}courmodu_modins_ix ON {prefix}course_modules (module, instance);

CREATE TABLE {prefix}context (
    id INTEGER PRIMARY KEY,
    contextlevel INTEGER NOT NULL DEFAULT 0,
    instanceid INTEGER NOT NULL DEFAULT 0,
    path VARCHAR(255),
    depth INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}cont_conins_uix ON {prefix}context (contextlevel, instanceid);

CREATE TABLE {prefix}enrol (
    id INTEGER PRIMARY KEY,
    enrol VARCHAR(20) NOT NULL DEFAULT '',
    status INTEGER NOT NULL DEFAULT 0,
    courseid INTEGER NOT NULL,
    sortorder INTEGER NOT NULL DEFAULT 0,
    roleid INTEGER DEFAULT 0,
    timecreated INTEGER NOT NULL DEFAULT 0,
    timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX {prefix}enro_cou_ix ON {prefix}enrol (courseid);

CREATE TABLE {prefix}user_enrolments (
    id INTEGER PRIMARY KEY,
    status INTEGER NOT NULL DEFAULT 0,
    enrolid INTEGER NOT NULL,
    userid INTEGER NOT NULL,
    timestart INTEGER NOT NULL DEFAULT 0,
    timeend INTEGER NOT NULL DEFAULT 2147483647,
    modifierid INTEGER NOT NULL DEFAULT 0,
    timecreated INTEGER NOT NULL DEFAULT 0,
    timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX {prefix}userenro_enruse_uix ON {prefix}user_enrolments (enrolid, userid);
CREATE INDEX {prefix}userenro_use_ix ON {prefix}user_enrolments (userid);

CREATE TABLE {prefix}grade_items (
    id INTEGER PRIMARY KEY,
    courseid INTEGER,
    categoryid INTEGER,
    itemname VARCHAR(255),
    itemtype VARCHAR(30) NOT NULL DEFAULT '',
    itemmodule VARCHAR(30),
    iteminstance INTEGER,
    grademax NUMERIC(10,5) NOT NULL DEFAULT 100,
    grademin NUMERIC(10,5) NOT NULL DEFAULT 0,
    sortorder INTEGER NOT NULL DEFAULT 0,
    timecreated INTEGER,
    timemodified INTEGER
);
CREATE INDEX {prefix}gradite_cou_ix ON {prefix}grade_items (courseid);

CREATE TABLE {prefix}grade_grades (
    id INTEGER PRIMARY KEY,
    itemid INTEGER NOT NULL,
    userid INTEGER NOT NULL,
    rawgrade NUMERIC(10,5),
    rawgrademax NUMERIC(10,5) NOT NULL DEFAULT 100,
    rawgrademin NUMERIC(10,5) NOT NULL DEFAULT 0,
    finalgrade NUMERIC(10,5),
    timecreated INTEGER,
    timemodified INTEGER
);
CREATE UNIQUE INDEX {prefix}gradgrad_useite_uix ON {prefix}grade_grades (userid, itemid);
CREATE INDEX {prefix}gradgrad_ite_ix ON {prefix}grade_grades (itemid);

CREATE TABLE {prefix}logstore_standard_log (
    id INTEGER PRIMARY KEY,
    eventname VARCHAR(255) NOT NULL DEFAULT '',
    component VARCHAR(100) NOT NULL DEFAULT '',
    action VARCHAR(100) NOT NULL DEFAULT '',
    target VARCHAR(100) NOT NULL DEFAULT '',
    objecttable VARCHAR(50),
    objectid INTEGER,
    crud VARCHAR(1) NOT NULL DEFAULT '',
    edulevel INTEGER NOT NULL,
    contextid INTEGER NOT NULL,
    contextlevel INTEGER NOT NULL,
    contextinstanceid INTEGER NOT NULL,
    userid INTEGER NOT NULL,
    courseid INTEGER,
    relateduserid INTEGER,
    anonymous INTEGER NOT NULL DEFAULT 0,
    other TEXT,
    timecreated INTEGER NOT NULL,
    origin VARCHAR(10),
    ip VARCHAR(45),
    realuserid INTEGER
);

-- Module instance tables of the module types the demo site uses. Real Moodle tables have many more
-- columns; usestats only reads the instance name.
CREATE TABLE {prefix}assign (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}forum (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}learningtimecheck (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}page (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}quiz (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}resource (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');
CREATE TABLE {prefix}url (id INTEGER PRIMARY KEY, course INTEGER NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '');

-- Moodle core tables that usestats reads, as Moodle's XMLDB lays them out on MySQL/MariaDB:
-- int(10) -> BIGINT, int(1..4) -> SMALLINT, char(n) -> VARCHAR(n), number(10,5) -> DECIMAL(10,5),
-- InnoDB with utf8mb4 and Moodle's default collation. Only the columns that usestats or the demo
-- site use are present. This file builds test and demo databases; a real Moodle database already
-- has its tables and usestats only reads them.

CREATE TABLE {prefix}config (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL DEFAULT '',
    value LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {prefix}conf_nam_uix ON {prefix}config (name);

CREATE TABLE {prefix}mnet_host (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    deleted SMALLINT NOT NULL DEFAULT 0,
    wwwroot VARCHAR(255) NOT NULL DEFAULT '',
    ip_address VARCHAR(45) NOT NULL DEFAULT '',
    name VARCHAR(80) NOT NULL DEFAULT '',
    public_key LONGTEXT NOT NULL DEFAULT (''),
    public_key_expires BIGINT NOT NULL DEFAULT 0,
    transport SMALLINT NOT NULL DEFAULT 0,
    portno INTEGER NOT NULL DEFAULT 0,
    last_connect_time BIGINT NOT NULL DEFAULT 0,
    last_log_id BIGINT NOT NULL DEFAULT 0,
    applicationid BIGINT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {prefix}user (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
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
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {prefix}user_mneuse_uix ON {prefix}user (mnethostid, username);
CREATE INDEX {prefix}user_idn_ix ON {prefix}user (idnumber);
CREATE INDEX {prefix}user_ema_ix ON {prefix}user (email);

CREATE TABLE {prefix}course (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
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
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {prefix}cour_cat_ix ON {prefix}course (category);
CREATE INDEX {prefix}cour_idn_ix ON {prefix}course (idnumber);
CREATE INDEX {prefix}cour_sho_ix ON {prefix}course (shortname);

CREATE TABLE {prefix}course_sections (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    course BIGINT NOT NULL DEFAULT 0,
    section BIGINT NOT NULL DEFAULT 0,
    name VARCHAR(255),
    sequence LONGTEXT,
    visible SMALLINT NOT NULL DEFAULT 1,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {prefix}coursect_cousec_uix ON {prefix}course_sections (course, section);

CREATE TABLE {prefix}modules (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(20) NOT NULL DEFAULT '',
    visible SMALLINT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {prefix}modu_nam_ix ON {prefix}modules (name);

CREATE TABLE {prefix}course_modules (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    course BIGINT NOT NULL DEFAULT 0,
    module BIGINT NOT NULL DEFAULT 0,
    instance BIGINT NOT NULL DEFAULT 0,
    section BIGINT NOT NULL DEFAULT 0,
    idnumber VARCHAR(100),
    added BIGINT NOT NULL DEFAULT 0,
    visible SMALLINT NOT NULL DEFAULT 1,
    deletioninprogress SMALLINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {prefix}courmodu_cou_ix ON {prefix}course_modules (course);
CREATE INDEX {prefix}courmodu_modins_ix ON {prefix}course_modules (module, instance);

CREATE TABLE {prefix}context (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contextlevel BIGINT NOT NULL DEFAULT 0,
    instanceid BIGINT NOT NULL DEFAULT 0,
    path VARCHAR(255),
    depth SMALLINT NOT NULL DEFAULT 0,
    locked SMALLINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {prefix}cont_conins_uix ON {prefix}context (contextlevel, instanceid);

CREATE TABLE {prefix}enrol (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    enrol VARCHAR(20) NOT NULL DEFAULT '',
    status BIGINT NOT NULL DEFAULT 0,
    courseid BIGINT NOT NULL,
    sortorder BIGINT NOT NULL DEFAULT 0,
    roleid BIGINT DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {prefix}enro_cou_ix ON {prefix}enrol (courseid);

CREATE TABLE {prefix}user_enrolments (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    status BIGINT NOT NULL DEFAULT 0,
    enrolid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    timestart BIGINT NOT NULL DEFAULT 0,
    timeend BIGINT NOT NULL DEFAULT 2147483647,
    modifierid BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {prefix}userenro_enruse_uix ON {prefix}user_enrolments (enrolid, userid);
CREATE INDEX {prefix}userenro_use_ix ON {prefix}user_enrolments (userid);

CREATE TABLE {prefix}grade_items (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    courseid BIGINT,
    categoryid BIGINT,
    itemname VARCHAR(255),
    itemtype VARCHAR(30) NOT NULL DEFAULT '',
    itemmodule VARCHAR(30),
    iteminstance BIGINT,
    grademax DECIMAL(10,5) NOT NULL DEFAULT 100,
    grademin DECIMAL(10,5) NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT,
    timemodified BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {prefix}gradite_cou_ix ON {prefix}grade_items (courseid);

CREATE TABLE {prefix}grade_grades (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    itemid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    rawgrade DECIMAL(10,5),
    rawgrademax DECIMAL(10,5) NOT NULL DEFAULT 100,
    rawgrademin DECIMAL(10,5) NOT NULL DEFAULT 0,
    finalgrade DECIMAL(10,5),
    timecreated BIGINT,
    timemodified BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {prefix}gradgrad_useite_uix ON {prefix}grade_grades (userid, itemid);
CREATE INDEX {prefix}gradgrad_ite_ix ON {prefix}grade_grades (itemid);

CREATE TABLE {prefix}logstore_standard_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
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
    other LONGTEXT,
    timecreated BIGINT NOT NULL,
    origin VARCHAR(10),
    ip VARCHAR(45),
    realuserid BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Module instance tables of the module types the demo site uses. Real Moodle tables have many more
-- columns; usestats only reads the instance name.
CREATE TABLE {prefix}assign (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE {prefix}forum (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE {prefix}learningtimecheck (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE {prefix}page (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE {prefix}quiz (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE {prefix}resource (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE {prefix}url (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

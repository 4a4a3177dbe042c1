DROP TABLE backoffs;

package catalog

import "strings"

// IAM actions are "<prefix>:<Operation>" unless an exception below says
// otherwise. The prefix is the service's signing name unless iamPrefixes
// names another. Both tables were checked against the IAM service
// authorization reference (testdata/iam-actions.txt).

// iamPrefixes maps model names to IAM prefixes where the signing name is
// not the prefix.
var iamPrefixes = map[string]string{
	"monitoring":               "cloudwatch",
	"resourcegroupstaggingapi": "tag",
	"sso":                      "sso", // signs as awsssoportal
	"iot-data":                 "iot",
	"iotsecuretunneling":       "iot",
	"iot-jobs-data":            "iotjobsdata",
	"iotevents-data":           "iotevents",
	"cloudcontrol":             "cloudformation",
	"mturk-requester":          "mechanicalturk",
}

func iamPrefix(s *Service) string {
	if p, ok := iamPrefixes[s.Name]; ok {
		return p
	}
	return s.SigningName
}

// actionExceptions maps model name and operation to the IAM action name
// when it is not the operation name. A value without a colon keeps the
// service's prefix.
var actionExceptions = map[string]map[string]string{
	"s3": {
		"CompleteMultipartUpload":                     "PutObject",
		"CopyObject":                                  "PutObject",
		"CreateMultipartUpload":                       "PutObject",
		"UploadPart":                                  "PutObject",
		"UploadPartCopy":                              "PutObject",
		"CreateSession":                               "s3express:CreateSession",
		"DeleteBucketAnalyticsConfiguration":          "PutAnalyticsConfiguration",
		"DeleteBucketCors":                            "PutBucketCORS",
		"DeleteBucketEncryption":                      "PutEncryptionConfiguration",
		"DeleteBucketIntelligentTieringConfiguration": "PutIntelligentTieringConfiguration",
		"DeleteBucketInventoryConfiguration":          "PutInventoryConfiguration",
		"DeleteBucketLifecycle":                       "PutLifecycleConfiguration",
		"DeleteBucketMetricsConfiguration":            "PutMetricsConfiguration",
		"DeleteBucketOwnershipControls":               "PutBucketOwnershipControls",
		"DeleteBucketReplication":                     "PutReplicationConfiguration",
		"DeleteBucketTagging":                         "PutBucketTagging",
		"DeleteObjects":                               "DeleteObject",
		"DeletePublicAccessBlock":                     "PutBucketPublicAccessBlock",
		"GetBucketAccelerateConfiguration":            "GetAccelerateConfiguration",
		"GetBucketAnalyticsConfiguration":             "GetAnalyticsConfiguration",
		"GetBucketCors":                               "GetBucketCORS",
		"GetBucketEncryption":                         "GetEncryptionConfiguration",
		"GetBucketIntelligentTieringConfiguration":    "GetIntelligentTieringConfiguration",
		"GetBucketInventoryConfiguration":             "GetInventoryConfiguration",
		"GetBucketLifecycle":                          "GetLifecycleConfiguration",
		"GetBucketLifecycleConfiguration":             "GetLifecycleConfiguration",
		"GetBucketMetricsConfiguration":               "GetMetricsConfiguration",
		"GetBucketNotificationConfiguration":          "GetBucketNotification",
		"GetBucketReplication":                        "GetReplicationConfiguration",
		"GetObjectLockConfiguration":                  "GetBucketObjectLockConfiguration",
		"GetPublicAccessBlock":                        "GetBucketPublicAccessBlock",
		"HeadBucket":                                  "ListBucket",
		"HeadObject":                                  "GetObject",
		"ListBucketAnalyticsConfigurations":           "GetAnalyticsConfiguration",
		"ListBucketIntelligentTieringConfigurations":  "GetIntelligentTieringConfiguration",
		"ListBucketInventoryConfigurations":           "GetInventoryConfiguration",
		"ListBucketMetricsConfigurations":             "GetMetricsConfiguration",
		"ListBuckets":                                 "ListAllMyBuckets",
		"ListDirectoryBuckets":                        "s3express:ListAllMyDirectoryBuckets",
		"ListMultipartUploads":                        "ListBucketMultipartUploads",
		"ListObjectVersions":                          "ListBucketVersions",
		"ListObjects":                                 "ListBucket",
		"ListObjectsV2":                               "ListBucket",
		"ListParts":                                   "ListMultipartUploadParts",
		"PutBucketAccelerateConfiguration":            "PutAccelerateConfiguration",
		"PutBucketAnalyticsConfiguration":             "PutAnalyticsConfiguration",
		"PutBucketCors":                               "PutBucketCORS",
		"PutBucketEncryption":                         "PutEncryptionConfiguration",
		"PutBucketIntelligentTieringConfiguration":    "PutIntelligentTieringConfiguration",
		"PutBucketInventoryConfiguration":             "PutInventoryConfiguration",
		"PutBucketLifecycle":                          "PutLifecycleConfiguration",
		"PutBucketLifecycleConfiguration":             "PutLifecycleConfiguration",
		"PutBucketMetricsConfiguration":               "PutMetricsConfiguration",
		"PutBucketNotificationConfiguration":          "PutBucketNotification",
		"PutBucketReplication":                        "PutReplicationConfiguration",
		"PutObjectLockConfiguration":                  "PutBucketObjectLockConfiguration",
		"PutPublicAccessBlock":                        "PutBucketPublicAccessBlock",
		"SelectObjectContent":                         "GetObject",
		"WriteGetObjectResponse":                      "s3-object-lambda:WriteGetObjectResponse",
	},
	"s3control": {
		// Outposts buckets are managed through S3 Control.
		"CreateBucket":                       "s3-outposts:CreateBucket",
		"DeleteBucket":                       "s3-outposts:DeleteBucket",
		"GetBucket":                          "s3-outposts:GetBucket",
		"ListRegionalBuckets":                "s3-outposts:ListRegionalBuckets",
		"DeleteBucketLifecycleConfiguration": "s3-outposts:PutLifecycleConfiguration",
		"GetBucketLifecycleConfiguration":    "s3-outposts:GetLifecycleConfiguration",
		"PutBucketLifecycleConfiguration":    "s3-outposts:PutLifecycleConfiguration",
		"DeleteBucketReplication":            "s3-outposts:PutReplicationConfiguration",
		"GetBucketReplication":               "s3-outposts:GetReplicationConfiguration",
		"PutBucketReplication":               "s3-outposts:PutReplicationConfiguration",
		"DeleteBucketTagging":                "s3-outposts:PutBucketTagging",
		"GetBucketTagging":                   "s3-outposts:GetBucketTagging",
		"PutBucketTagging":                   "s3-outposts:PutBucketTagging",
		"GetBucketPolicy":                    "s3-outposts:GetBucketPolicy",
		"PutBucketPolicy":                    "s3-outposts:PutBucketPolicy",
		"DeleteBucketPolicy":                 "s3-outposts:DeleteBucketPolicy",
		"GetBucketVersioning":                "s3-outposts:GetBucketVersioning",
		"PutBucketVersioning":                "s3-outposts:PutBucketVersioning",
		"DeletePublicAccessBlock":            "PutAccountPublicAccessBlock",
		"GetPublicAccessBlock":               "GetAccountPublicAccessBlock",
		"PutPublicAccessBlock":               "PutAccountPublicAccessBlock",
	},
	"dynamodb": {
		// Classify refines these per request from the statements and
		// items; without them the strongest action stands.
		"ExecuteStatement":      "PartiQLDelete",
		"BatchExecuteStatement": "PartiQLDelete",
		"ExecuteTransaction":    "PartiQLDelete",
		"TransactGetItems":      "GetItem",
		"TransactWriteItems":    "DeleteItem",
	},
	"lambda": {
		"Invoke":                   "InvokeFunction",
		"InvokeWithResponseStream": "InvokeFunction",
		"GetLayerVersionByArn":     "GetLayerVersion",
	},
	"kms":               {"ReEncrypt": "ReEncryptFrom"},
	"sns":               {"PublishBatch": "Publish"},
	"sqs":               {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage", "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"},
	"bedrock-runtime":   {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"},
	"accessanalyzer":    {"GetFindingV2": "GetFinding", "ListFindingsV2": "ListFindings"},
	"amplify":           {"CreateWebhook": "CreateWebHook", "DeleteWebhook": "DeleteWebHook", "GetWebhook": "GetWebHook", "ListWebhooks": "ListWebHooks", "UpdateWebhook": "UpdateWebHook"},
	"appflow":           {"UnregisterConnector": "UnRegisterConnector"},
	"cleanroomsml":      {"UntagResource": "UnTagResource"},
	"codeguru-reviewer": {"UntagResource": "UnTagResource"},
	"cloudfront":        {"CreateDistributionWithTags": "CreateDistribution"},
	"detective":         {"ListOrganizationAdminAccounts": "ListOrganizationAdminAccount"},
	"glue": {
		"BatchGetDataQualityResult":       "GetDataQualityResult",
		"GetUnfilteredPartitionMetadata":  "GetPartition",
		"GetUnfilteredPartitionsMetadata": "GetPartitions",
		"GetUnfilteredTableMetadata":      "GetTable",
	},
	"iotfleetwise":        {"BatchCreateVehicle": "CreateVehicle", "BatchUpdateVehicle": "UpdateVehicle"},
	"lookoutequipment":    {"DescribeLabel": "Describelabel"},
	"marketplace-catalog": {"BatchDescribeEntities": "DescribeEntity"},
	"memorydb":            {"CreateACL": "CreateAcl", "DeleteACL": "DeleteAcl", "DescribeACLs": "DescribeAcls", "UpdateACL": "UpdateAcl"},
	"quicksight": {
		"DescribeAnalysisDefinition":  "DescribeAnalysis",
		"DescribeDashboardDefinition": "DescribeDashboard",
		"DescribeTemplateDefinition":  "DescribeTemplate",
	},
	"timestream-query":    {"Query": "Select"},
	"verifiedpermissions": {"BatchIsAuthorized": "IsAuthorized", "BatchIsAuthorizedWithToken": "IsAuthorizedWithToken"},
	"vpc-lattice":         {"BatchUpdateRule": "UpdateRule"},
	"cloudsearchdomain":   {"Search": "search", "Suggest": "suggest", "UploadDocuments": "document"},
	"dms": {
		"DescribeDataProviders":                "ListDataProviders",
		"DescribeExtensionPackAssociations":    "ListExtensionPacks",
		"DescribeInstanceProfiles":             "ListInstanceProfiles",
		"DescribeMetadataModelAssessments":     "ListMetadataModelAssessments",
		"DescribeMetadataModelConversions":     "ListMetadataModelConversions",
		"DescribeMetadataModelExportsAsScript": "ListMetadataModelExports",
		"DescribeMetadataModelExportsToTarget": "ListMetadataModelExports",
		"DescribeMigrationProjects":            "ListMigrationProjects",
		"ModifyConversionConfiguration":        "UpdateConversionConfiguration",
		"ModifyDataProvider":                   "UpdateDataProvider",
		"ModifyInstanceProfile":                "UpdateInstanceProfile",
		"ModifyMigrationProject":               "UpdateMigrationProject",
		"StartExtensionPackAssociation":        "AssociateExtensionPack",
		"StartMetadataModelExportAsScript":     "StartMetadataModelExportAsScripts",
	},
	"keyspaces": {
		"CreateKeyspace":              "Create",
		"CreateTable":                 "Create",
		"DeleteKeyspace":              "Drop",
		"DeleteTable":                 "Drop",
		"GetKeyspace":                 "Select",
		"GetTable":                    "Select",
		"GetTableAutoScalingSettings": "Select",
		"ListKeyspaces":               "Select",
		"ListTables":                  "Select",
		"ListTagsForResource":         "Select",
		"RestoreTable":                "Restore",
		"UpdateTable":                 "Alter",
	},
	"budgets": {
		"CreateBudget":                          "ModifyBudget",
		"CreateNotification":                    "ModifyBudget",
		"CreateSubscriber":                      "ModifyBudget",
		"DeleteBudget":                          "ModifyBudget",
		"DeleteNotification":                    "ModifyBudget",
		"DeleteSubscriber":                      "ModifyBudget",
		"UpdateBudget":                          "ModifyBudget",
		"UpdateNotification":                    "ModifyBudget",
		"UpdateSubscriber":                      "ModifyBudget",
		"DescribeBudget":                        "ViewBudget",
		"DescribeBudgetNotificationsForAccount": "ViewBudget",
		"DescribeBudgetPerformanceHistory":      "ViewBudget",
		"DescribeBudgets":                       "ViewBudget",
		"DescribeNotificationsForBudget":        "ViewBudget",
		"DescribeSubscribersForNotification":    "ViewBudget",
	},
	"neptunedata": {
		// The query text is not analysed: running a query maps to the
		// write action, explaining one to the read action.
		"ExecuteGremlinQuery":           "WriteDataViaQuery",
		"ExecuteGremlinProfileQuery":    "WriteDataViaQuery",
		"ExecuteGremlinExplainQuery":    "ReadDataViaQuery",
		"ExecuteOpenCypherExplainQuery": "ReadDataViaQuery",
		"CancelGremlinQuery":            "CancelQuery",
		"CancelOpenCypherQuery":         "CancelQuery",
		"GetGremlinQueryStatus":         "GetQueryStatus",
		"GetOpenCypherQueryStatus":      "GetQueryStatus",
		"ListGremlinQueries":            "GetQueryStatus",
		"ListOpenCypherQueries":         "GetQueryStatus",
		"DeletePropertygraphStatistics": "DeleteStatistics",
		"DeleteSparqlStatistics":        "DeleteStatistics",
		"GetPropertygraphStatistics":    "GetStatisticsStatus",
		"GetSparqlStatistics":           "GetStatisticsStatus",
		"ManagePropertygraphStatistics": "ManageStatistics",
		"ManageSparqlStatistics":        "ManageStatistics",
		"GetPropertygraphSummary":       "GetGraphSummary",
		"GetRDFGraphSummary":            "GetGraphSummary",
		"GetSparqlStream":               "GetStreamRecords",
		"ExecuteFastReset":              "ResetDatabase",
		"GetMLDataProcessingJob":        "GetMLDataProcessingJobStatus",
		"GetMLEndpoint":                 "GetMLEndpointStatus",
		"GetMLModelTrainingJob":         "GetMLModelTrainingJobStatus",
		"GetMLModelTransformJob":        "GetMLModelTransformJobStatus",
	},
}

func iamAction(s *Service, op *Operation) string {
	switch s.Name {
	case "apigateway", "apigatewayv2":
		// API Gateway management actions are the HTTP method.
		return "apigateway:" + op.Method
	case "apigatewaymanagementapi":
		return "execute-api:ManageConnections"
	}
	if a, ok := actionExceptions[s.Name][op.Name]; ok {
		if strings.Contains(a, ":") {
			return a
		}
		return s.IAMPrefix + ":" + a
	}
	return s.IAMPrefix + ":" + op.Name
}

// s3VersionActions are the S3 actions that become their "Version" form
// when the request names an object version (?versionId=).
var s3VersionActions = map[string]string{
	"s3:GetObject":           "s3:GetObjectVersion",
	"s3:DeleteObject":        "s3:DeleteObjectVersion",
	"s3:GetObjectAcl":        "s3:GetObjectVersionAcl",
	"s3:PutObjectAcl":        "s3:PutObjectVersionAcl",
	"s3:GetObjectTagging":    "s3:GetObjectVersionTagging",
	"s3:PutObjectTagging":    "s3:PutObjectVersionTagging",
	"s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
	"s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
	"s3:GetObjectTorrent":    "s3:GetObjectVersionTorrent",
}

// partiQLVerbs ranks PartiQL statement kinds; a request with several
// statements takes the strongest.
var partiQLVerbs = []struct{ verb, action string }{
	{"SELECT", "dynamodb:PartiQLSelect"},
	{"EXISTS", "dynamodb:PartiQLSelect"},
	{"INSERT", "dynamodb:PartiQLInsert"},
	{"UPDATE", "dynamodb:PartiQLUpdate"},
	{"DELETE", "dynamodb:PartiQLDelete"},
}

// refine adjusts the static action and flags of op for this request.
func refine(r *Request, op *Operation, p *params, out *Classification) {
	switch op.svc.Name {
	case "s3":
		if len(r.Query["versionId"]) > 0 {
			if a, ok := s3VersionActions[out.Action]; ok {
				out.Action = a
			}
		}
	case "dynamodb":
		var stmts []string
		switch op.Name {
		case "ExecuteStatement":
			stmts = p.all("Statement")
		case "BatchExecuteStatement":
			stmts = jsonStrings(r.Body, "Statements", "[]", "Statement")
		case "ExecuteTransaction":
			stmts = jsonStrings(r.Body, "TransactStatements", "[]", "Statement")
		case "TransactWriteItems":
			// The strongest kind among the items: Delete > Update > Put >
			// ConditionCheck.
			kinds := jsonStrings(r.Body, "TransactItems", "[]", "{}")
			best := ""
			for _, k := range kinds {
				switch k {
				case "Delete":
					best = "dynamodb:DeleteItem"
				case "Update":
					if best != "dynamodb:DeleteItem" {
						best = "dynamodb:UpdateItem"
					}
				case "Put":
					if best == "" || best == "dynamodb:ConditionCheckItem" {
						best = "dynamodb:PutItem"
					}
				case "ConditionCheck":
					if best == "" {
						best = "dynamodb:ConditionCheckItem"
					}
				}
			}
			if best != "" {
				out.Action = best
			}
			return
		default:
			return
		}
		rank, readOnly := -1, len(stmts) > 0
		for _, s := range stmts {
			i := partiQLKind(s)
			if i < 0 {
				// Unparsable: assume the strongest.
				i = len(partiQLVerbs) - 1
			}
			if i > 1 {
				readOnly = false
			}
			rank = max(rank, i)
		}
		if rank >= 0 {
			out.Action = partiQLVerbs[rank].action
		} else {
			out.Action = "dynamodb:PartiQLDelete"
		}
		out.ReadOnly = readOnly
	}
}

// partiQLKind returns the index in partiQLVerbs of a statement's first
// keyword, or -1.
func partiQLKind(stmt string) int {
	stmt = strings.TrimLeft(stmt, " \t\r\n(")
	end := 0
	for end < len(stmt) && end < 8 && isLetter(stmt[end]) {
		end++
	}
	word := strings.ToUpper(stmt[:end])
	for i, v := range partiQLVerbs {
		if v.verb == word {
			return i
		}
	}
	return -1
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
